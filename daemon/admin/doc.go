// Package admin is rmtd's admin port: a RESP server (redcon, one goroutine per connection)
// that answers INFO from a status.Snapshot, and PING, ECHO, AUTH, COMMAND, CLIENT, QUIT and
// SHUTDOWN. It never touches data-path state: what it shows comes from the Snapshot callback,
// what it does (SHUTDOWN) goes through the callbacks it is given.
//
//	srv := admin.New(admin.Options{Addr: "127.0.0.1:8888", RequirePass: pass,
//		Snapshot: d.Snapshot, Shutdown: d.Shutdown})
//	err := srv.Start()
//	defer srv.Close()
//
// Any byte sequence is safe: a guard parses client input before redcon sees it (guard.go), a
// command that panics closes only its connection, clients that do not authenticate are timed
// out and are the first to go when max_clients is reached, and what clients can repeat at will
// (failed AUTHs, refused connections) is logged in aggregate.
package admin
