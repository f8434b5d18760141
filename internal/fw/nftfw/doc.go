// Package nftfw is the nftables fw.Backend. It owns one table,
// `inet netshare`, in one network namespace, and talks to the kernel over
// netlink (google/nftables): Replace rebuilds the table in one atomic batch;
// UpdateMappings changes elements of the mappings map in one batch, whatever
// the number of mappings.
//
// Names reach the kernel as netlink attributes, never as nft script text.
//
// It is Linux only: on other systems the package is empty.
package nftfw
