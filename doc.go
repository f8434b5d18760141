// Package netshare is the root of the netshare module: Internet Connection
// Sharing and Internet Connection Firewall for Linux. It holds no code, only
// repository-wide tests; the command is cmd/netshare, the Go client is
// hnetcfg, and the daemon's parts live under internal/.
package netshare
