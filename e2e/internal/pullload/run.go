package pullload

import (
	"context"
	"sync"
	"time"
)

// Concurrent runs n pulls, at most concurrency at a time; with concurrency >= n all of them
// start together (after a barrier), the worst case for the front end. pick chooses the target
// of pull i. The pulls are returned in the order they finished.
func Concurrent(ctx context.Context, c *Client, n, concurrency int, pick func(i int) Target) []Pull {
	if concurrency <= 0 || concurrency > n {
		concurrency = n
	}
	results := make(chan Pull, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range next {
				results <- c.Pull(ctx, pick(i))
			}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	out := make([]Pull, 0, n)
	for p := range results {
		out = append(out, p)
	}
	return out
}

// SteadyOptions is a steady pull rate.
type SteadyOptions struct {
	// PerMinute pulls are started, evenly spaced, for Duration (at most MaxPulls, if set):
	// PerMinute * Duration pulls, the first at once.
	PerMinute float64
	Duration  time.Duration
	MaxPulls  int
	// MaxInFlight bounds the pulls running at once; a pull due while that many run is skipped
	// (recorded with ErrSkipped), so a stalled front end is not buried under new pulls.
	MaxInFlight int
	// Timeout bounds each pull.
	Timeout time.Duration
}

// Steady starts pulls at a steady rate and returns every pull (finished or skipped) once the
// last one has ended. pick chooses the target of pull i.
func Steady(ctx context.Context, c *Client, o SteadyOptions, pick func(i int) Target) []Pull {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 16
	}
	interval := time.Duration(float64(time.Minute) / o.PerMinute)
	var (
		mu      sync.Mutex
		results []Pull
		wg      sync.WaitGroup
	)
	add := func(p Pull) {
		mu.Lock()
		results = append(results, p)
		mu.Unlock()
	}
	slots := make(chan struct{}, o.MaxInFlight)
	start := time.Now()
	for i := 0; o.MaxPulls <= 0 || i < o.MaxPulls; i++ {
		// Pull i is due at start + i*interval, whatever the previous ones took.
		due := time.Duration(i) * interval
		if due >= o.Duration {
			break
		}
		if wait := time.Until(start.Add(due)); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				wg.Wait()
				return results
			case <-timer.C:
			}
		}
		select {
		case slots <- struct{}{}:
		default:
			add(Pull{Target: pick(i).Ref, Start: time.Now(), Err: ErrSkipped})
			continue
		}
		wg.Add(1)
		go func(t Target) {
			defer wg.Done()
			defer func() { <-slots }()
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if o.Timeout > 0 {
				pctx, cancel = context.WithTimeout(ctx, o.Timeout)
			}
			defer cancel()
			add(c.Pull(pctx, t))
		}(pick(i))
	}
	wg.Wait()
	return results
}
