//go:build !linux

package bench

import (
	"errors"

	"github.com/netshare/netshare/internal/lab"
)

var errLinuxOnly = errors.New("the bench needs Linux (network namespaces, nftables)")

func rulesTurn(*lab.Lab, int) (*changes, func() error, error) { return nil, nil, errLinuxOnly }

func tableTurn(*lab.Lab, int) (*changes, func() error, error) { return nil, nil, errLinuxOnly }

func checkElements(*lab.Lab, int) error { return errLinuxOnly }
