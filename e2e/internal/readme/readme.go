// Package readme rewrites a generated section of a Markdown file: the text between a begin and
// an end marker, so that figures in the README come from the command that measures them.
package readme

import (
	"fmt"
	"os"
	"strings"
)

// Update puts section between the markers begin and end of the file at path.
func Update(path, begin, end, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q … %q markers", path, begin, end)
	}
	s = s[:i+len(begin)] + "\n" + section + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
