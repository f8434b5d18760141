// Package linuxlink is the kernel's link.Backend: it lists, raises, lowers
// and names the links of one network namespace over netlink.
//
// It is Linux only: on other systems the package is empty.
package linuxlink
