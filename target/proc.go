package target

import "sync"

// proc starts and stops the goroutines of one component: Go runs a function, Wait returns when
// every one of them has returned. Stopping is the component's business (closing its socket or a
// channel); proc only keeps the count, so Close can wait for everything it started.
type proc struct {
	wg sync.WaitGroup
}

// Go runs fn on a new goroutine counted by Wait.
func (p *proc) Go(fn func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
}

// Wait blocks until every goroutine started by Go has returned.
func (p *proc) Wait() { p.wg.Wait() }
