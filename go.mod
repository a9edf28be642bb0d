module github.com/harbormirror/harbormirror

go 1.22
