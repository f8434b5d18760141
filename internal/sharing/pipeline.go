package sharing

import (
	"context"
	"fmt"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/store"
)

// Changes of mappings (add, edit, enable, disable, remove) come many at a
// time (a bulk import, devices leasing their ports), so they are carried
// out in groups: whoever holds mu takes every change queued, checks each
// against the state as the ones before it left it, writes them all in one
// commit (one fsync) and sends the firewall one delta for all of them.
// Each caller is answered once its change is on disk and in the kernel.

// mappingOp is one queued change of a mapping.
type mappingOp struct {
	// plan checks the change against the state in memory (mu held) and
	// returns the mapping as it is to be, or nil to remove mapping id.
	// Returning the mapping as it is changes nothing.
	plan func() (mp *store.Mapping, id uint64, err error)

	done chan struct{} // closed once the outcome is set
	lead chan struct{} // closed to make this op's caller the leader

	// The outcome.
	id  uint64
	err error
}

// changeMapping queues a change and returns the mapping as the change
// left it. One caller at a time leads: it carries out the queue, group by
// group, until its own change is done, then hands the lead to the first
// caller still waiting. The others wait for their answer, or for the lead.
func (m *Manager) changeMapping(ctx context.Context, plan func() (*store.Mapping, uint64, error)) (Mapping, error) {
	op := m.runOps(ctx, []func() (*store.Mapping, uint64, error){plan})[0]
	return m.answer(op)
}

// changeMappings queues several changes at once, so that they go in one
// group (up to maxOps), and returns each one's error.
func (m *Manager) changeMappings(ctx context.Context, plans []func() (*store.Mapping, uint64, error)) []error {
	ops := m.runOps(ctx, plans)
	errs := make([]error, len(ops))
	for i, op := range ops {
		errs[i] = op.err
	}
	return errs
}

// runOps queues the changes of plans, in order, and returns once they are
// all carried out, by this caller leading or by another.
func (m *Manager) runOps(ctx context.Context, plans []func() (*store.Mapping, uint64, error)) []*mappingOp {
	ops := make([]*mappingOp, len(plans))
	for i, plan := range plans {
		ops[i] = &mappingOp{plan: plan, done: make(chan struct{}), lead: make(chan struct{})}
	}
	m.opMu.Lock()
	m.ops = append(m.ops, ops...)
	leader := !m.leading
	m.leading = true
	m.opMu.Unlock()
	if !leader {
		// The lead goes to the first op still queued: while one of ours
		// waits there, the ones after it cannot be given the lead.
		for _, op := range ops {
			select {
			case <-op.done:
				continue
			case <-op.lead:
				leader = true
			}
			break
		}
		if !leader {
			return ops
		}
	}
	// The group carries others' changes too: the leader's caller going
	// away must not fail them.
	ctx = context.WithoutCancel(ctx)
	m.mu.Lock()
	for !ops[len(ops)-1].finished() {
		m.runMappingOpsLocked(ctx)
	}
	m.mu.Unlock()
	m.opMu.Lock()
	if len(m.ops) > 0 {
		close(m.ops[0].lead)
	} else {
		m.leading = false
	}
	m.opMu.Unlock()
	return ops
}

func (op *mappingOp) finished() bool {
	select {
	case <-op.done:
		return true
	default:
		return false
	}
}

// answer returns the outcome of a finished op.
func (m *Manager) answer(op *mappingOp) (Mapping, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	mp := m.mappings[op.id]
	switch {
	case op.err != nil && mp != nil && hresult.CodeOf(op.err) == hresult.Fail && m.unapplied[op.id]:
		// Stored, but not yet in the kernel.
		return m.mappingPropsLocked(mp), op.err
	case op.err != nil:
		return Mapping{}, op.err
	case mp != nil:
		return m.mappingPropsLocked(mp), nil
	}
	return Mapping{}, nil
}

// maxOps bounds the changes carried out in one group.
const maxOps = 4096

// runMappingOpsLocked carries out the queued changes of mappings.
func (m *Manager) runMappingOpsLocked(ctx context.Context) {
	m.opMu.Lock()
	n := min(len(m.ops), maxOps)
	ops := m.ops[:n:n]
	m.ops = m.ops[n:]
	m.opMu.Unlock()

	type undo struct {
		id  uint64
		old *store.Mapping
	}
	var (
		undos   []undo
		applied []*mappingOp
		b       store.Batch
	)
	before := map[uint64]*store.Mapping{} // each touched mapping as it was before the group
	oldLastID := m.lastID
	var newUser, newDevice bool // whether the group gives out ids of each kind
	for _, op := range ops {
		mp, id, err := op.plan()
		op.id = id
		if err != nil {
			op.err = err
			close(op.done)
			continue
		}
		old := m.mappings[id]
		if (mp != nil && old != nil && *mp == *old) || (mp == nil && old == nil) {
			close(op.done) // nothing to do
			continue
		}
		if old == nil {
			newUser = newUser || mp.Origin == OriginUser
			newDevice = newDevice || mp.Origin != OriginUser
		}
		if _, seen := before[id]; !seen {
			before[id] = old
		}
		undos = append(undos, undo{id, old})
		m.setMapping(id, mp)
		if mp == nil {
			b.DeleteMapping(id, old.Origin)
		} else {
			b.PutMapping(*mp)
		}
		applied = append(applied, op)
	}
	if len(applied) == 0 {
		return
	}
	finish := func(err error) {
		for _, op := range applied {
			op.err = err
			close(op.done)
		}
	}
	if newUser {
		b.SetLastMappingID(m.lastID)
	}
	if newDevice {
		b.SetLastDeviceMappingID(m.lastID)
	}
	if err := m.commitRecordsLocked(ctx, &b); err != nil {
		for i := len(undos) - 1; i >= 0; i-- {
			m.setMapping(undos[i].id, undos[i].old)
		}
		m.view.Lock()
		m.lastID = oldLastID
		m.view.Unlock()
		finish(err)
		return
	}
	m.gen.Add(1)
	err := m.mappingsToKernelLocked(ctx, before)
	if m.fwErr != nil {
		m.view.Lock()
		if m.unapplied == nil {
			m.unapplied = map[uint64]bool{}
		}
		for id := range before {
			m.unapplied[id] = true
		}
		m.view.Unlock()
	}
	finish(err)
}

// mappingsToKernelLocked brings the firewall to the mappings in memory,
// after the mappings of before (as they were) changed: one delta, or, if
// the firewall is not known to hold the state before them, the whole
// state. A failure leaves the firewall to Refresh, which tries again,
// and is shown on the mappings until it holds.
func (m *Manager) mappingsToKernelLocked(ctx context.Context, before map[uint64]*store.Mapping) error {
	var err error
	if m.fwErr == nil {
		var d delta
		for id, old := range before {
			was, wasOK := m.activeLocked(old)
			now, nowOK := m.activeLocked(m.mappings[id])
			d.note(was, wasOK, now, nowOK)
		}
		del, add := d.sorted()
		if len(del)+len(add) == 0 {
			return nil
		}
		err = m.fw.UpdateMappings(ctx, del, add)
	} else {
		err = m.replaceLocked(ctx, m.fwConfigLocked())
	}
	if err == nil {
		return nil
	}
	m.fwFailedLocked(err)
	return hresult.New(hresult.Fail, "the change is saved, but the firewall did not take it (netshare keeps trying): %w", err)
}

// fwFailedLocked records that the firewall may not hold the state in
// memory: Refresh replaces it whole until it does.
func (m *Manager) fwFailedLocked(err error) {
	if m.fwErr == nil {
		m.log.Error("the firewall does not hold the stored state; trying again every second", "err", err)
	}
	m.view.Lock()
	m.fwErr = fmt.Errorf("not yet applied to the firewall: %w", err)
	m.view.Unlock()
}
