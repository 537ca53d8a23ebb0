package web

// ListenReady is closed once the dashboard's log listener took effect: tests append lines after
// it, so a notification (not a poll) must wake the stream.
func ListenReady(d *Dashboard) <-chan struct{} { return d.hub.ready }
