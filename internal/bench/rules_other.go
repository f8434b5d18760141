//go:build !linux

package bench

import (
	"context"
	"errors"

	"github.com/netshare/netshare/internal/lab"
)

var errLinuxOnly = errors.New("the bench needs Linux (network namespaces, nftables)")

func ruleRuns(context.Context, *Options, *lab.Lab, *Results) error { return errLinuxOnly }

func checkElements(*lab.Lab, int) error { return errLinuxOnly }
