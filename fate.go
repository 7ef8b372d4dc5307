package batch

import (
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// This file decides a chunk's fate: after each attempt to send it, whether
// it is written, sent again, looked up, cut smaller, or reported. It does no
// I/O; retry.go carries out what it decides.
//
// One value, landing, answers the question every decision turns on: may an
// earlier attempt of this chunk have been applied? A chunk starts with the
// landing of the chunk it was cut from, and an attempt whose reply is lost
// makes it landMaybe:
//
//	landNone ──(reply lost, resend allowed)──▶ landMaybe ──(look-up: none found)──▶ landAbsent
//	    ▲                                          ▲                                     │
//	    └── a fresh chunk                          └──────(reply lost, or a 1062)────────┘
//
// The steps that end a chunk are stepDone (written), stepReport (refused:
// not written, or an unknown outcome when landMaybe) and stepStop (the load
// stops; settled by one last look-up where possible, settle.go). With
// MaxRejects, a row the server refuses for its values ends in stepIsolate:
// it is rejected and the rest of the chunk sent again.

// landing says whether an earlier attempt of a chunk may have been applied.
type landing uint8

const (
	// landNone: no earlier attempt can have been applied.
	landNone landing = iota
	// landMaybe: an attempt got no reply and was not looked up since: it may
	// have been applied, or may still be (the server finishes a statement
	// whose client is gone). Ending the chunk now is an unknown outcome.
	landMaybe
	// landAbsent: such an attempt was looked up and none of its rows were
	// found. It may still land late, so a duplicate key (1062) now is
	// ambiguous; ending the chunk now leaves it not written.
	landAbsent
)

// inherited is the landing of chunks cut from a chunk in this state: they
// never were looked up on their own, so any doubt makes them landMaybe.
func (l landing) inherited() landing {
	if l == landNone {
		return landNone
	}
	return landMaybe
}

// step is what happens to a chunk next.
type step uint8

const (
	stepDone        step = iota // written
	stepReport                  // ends here; the class says how (see verdict)
	stepStop                    // the load is stopping: settle the chunk, then end it
	stepSend                    // send on the connection at hand, now
	stepResend                  // back off, then send on a fresh connection
	stepLookup                  // back off, then look the rows up on a fresh connection
	stepShrink                  // the server refused the size: back off, reopen, cut smaller
	stepLowerClient             // the driver refused a packet: lower the assumed client limit, re-split
	stepIsolate                 // the server refused a row's values: reject it, send the others again
)

// fate is one chunk's history across its attempts. The zero value is a
// fresh chunk that may be resent.
type fate struct {
	land   landing
	policy unknownPolicy // what may be done after a lost reply (retry.go)
	owned  bool          // sent on a caller's handle: nothing is ever resent
	err    error         // the last failed attempt's error
	cut    bool          // the last failure was a write cut, taken for a refused size
	// isolate: rows the server refuses for their values are taken out of
	// the chunk and rejected (MaxRejects); dupIsRow: a 1062 is such a
	// refusal (a plain INSERT).
	isolate, dupIsRow bool
}

// attemptEnd is how one attempt to send a chunk ended.
type attemptEnd struct {
	err      error
	sent     bool  // the statement went out: PREPARE passed
	stopping bool  // the load's ctx had ended
	cause    error // its cause, when stopping
	// clientKnown: the driver's limit is known (DriverConfig), so
	// mysql.ErrPktTooLarge cannot be cured by assuming a lower one.
	clientKnown bool
}

// verdict is the next step, the class that explains it, and whether the
// attempt's bytes reached the server (they count in Result.Bytes).
type verdict struct {
	next    step
	class   class
	counted bool
}

// judge records how an attempt ended and decides what comes next.
func (f *fate) judge(a attemptEnd) verdict {
	if a.err == nil {
		return verdict{next: stepDone, counted: true}
	}
	f.err = a.err
	if !a.sent && a.stopping {
		return verdict{next: stepStop, class: classNotSent}
	}
	cl := classify(a.err)
	switch {
	case !a.sent && cl == classUnknown:
		cl = classNotSent // PREPARE failed: no row can have been written
	case a.sent && a.stopping && errors.Is(a.err, a.cause):
		// Given up on after the grace period, whatever stopped the load:
		// the statement may still land.
		cl = classUnknown
	}
	v := verdict{class: cl, counted: cl != classNotSent && cl != classTooLarge}
	if f.land != landNone && errNumber(a.err) == erDupEntry {
		// An earlier attempt whose reply was lost may have landed since the
		// last look-up: look again rather than fail.
		v.class = classUnknown
	}
	if errors.Is(a.err, mysql.ErrPktTooLarge) && !a.clientKnown {
		v.next = stepLowerClient // nothing was written
		return v
	}
	f.cut = v.class == classNotSent && isWriteCut(a.err)
	if f.cut {
		// A cut write may be a packet the server found too large: it
		// answers 1153 and closes while the client still writes.
		v.class = classTooLarge
	}
	return f.decide(v)
}

// decide picks the step for a failed attempt of class v.class.
func (f *fate) decide(v verdict) verdict {
	if v.class == classPermanent && f.rejects() {
		v.next = stepIsolate
		return v
	}
	if f.owned || v.class == classPermanent || v.class == classUnknown && f.policy == unknownFail {
		if f.land == landMaybe {
			v.class = classUnknown // an earlier attempt may still have landed
		}
		v.next = stepReport
		return v
	}
	switch {
	case v.class == classTooLarge:
		v.next = stepShrink
	case v.class == classUnknown:
		f.land = landMaybe
		v.next = stepResend
		if f.policy == unknownVerify {
			v.next = stepLookup
		}
	default:
		v.next = stepResend
	}
	return v
}

// found records a look-up that found n of the chunk's rows rows in the
// table, after a lost reply. The error explains a stepReport.
func (f *fate) found(n, rows int) (verdict, error) {
	switch {
	case n == rows:
		f.land = landNone
		return verdict{next: stepDone}, nil
	case n > 0:
		return verdict{next: stepReport, class: classUnknown},
			fmt.Errorf("batch: %d of the chunk's %d keys found after a lost reply: %w", n, rows, f.err)
	case errNumber(f.err) == erDupEntry:
		// None of the chunk's keys is there, so the duplicate is real
		// (within the chunk, or on another unique key).
		f.land = landAbsent
		if f.rejects() {
			return verdict{next: stepIsolate, class: classPermanent}, nil
		}
		return verdict{next: stepReport, class: classPermanent}, f.err
	}
	f.land = landAbsent
	return verdict{next: stepSend}, nil
}

// rejects reports whether the last failure is a row refused for its values
// that is to be isolated. Not after a lost reply that was not looked up: an
// earlier attempt may have written the rows the refusal would send again.
func (f *fate) rejects() bool {
	return f.isolate && f.land != landMaybe && refusesRow(f.err, f.dupIsRow)
}

// unknown reports whether ending the chunk now leaves its outcome unknown.
func (f *fate) unknown() bool { return f.land == landMaybe }

// A group of chunks in one transaction (group.go) has a simpler fate: until
// COMMIT nothing of it is written, so a failure either rolls the statement
// back (a row refused for its values: reject it, go on in the transaction)
// or the whole transaction (replay the group), and only a COMMIT whose reply
// is lost leaves the group in doubt:
//
//	txNext ──(every chunk, the ledger row)──▶ COMMIT ──▶ txCommitted
//	   │                                        │
//	   ├─(row refused)─▶ txIsolate ─▶ txNext     └─(reply lost)─▶ txSettle ─(ledger row, keys)─▶ txCommitted / txReplay
//	   ├─(size refused)─▶ txShrink ─▶ txReplay
//	   ├─(connection lost, deadlock, lock wait timeout)─▶ txReplay
//	   └─(refused for good)─▶ txReport;  (the load stops)─▶ txStop

// txStep is what happens to a group, or within it, next.
type txStep uint8

const (
	txNext        txStep = iota // the statement is done: go on in the transaction
	txCommitted                 // the group is written
	txIsolate                   // a row refused for its values: reject it, resend the rest in the transaction
	txReplay                    // rolled back: back off, replay the group on a fresh connection
	txShrink                    // a size refused: cut the chunk smaller, replay
	txLowerClient               // the driver refused a packet: lower the assumed client limit, replay
	txSettle                    // COMMIT's reply was lost: find out whether it committed
	txReport                    // the group ends not written, with the error
	txStop                      // the load is stopping: the group ends not written
)

// judgeTxn decides what follows a statement in a group's open transaction.
// isolate: rows refused for their values are rejected (MaxRejects);
// dupIsRow: a 1062 is such a refusal.
func judgeTxn(a attemptEnd, isolate, dupIsRow bool) txStep {
	switch {
	case a.err == nil:
		return txNext
	case a.stopping:
		return txStop // not committed, so not written, whatever the statement did
	case isPktTooLarge(a.err) && !a.clientKnown:
		return txLowerClient
	}
	switch cl := classify(a.err); {
	case cl == classPermanent && isolate && refusesRow(a.err, dupIsRow):
		return txIsolate
	case cl == classPermanent:
		return txReport
	case cl == classTooLarge, cl == classNotSent && isWriteCut(a.err):
		return txShrink
	}
	// Not sent, rolled back, or no reply: the server rolls back the open
	// transaction of a lost connection, and ROLLBACK ends it otherwise.
	return txReplay
}

// judgeCommit decides what follows a failed COMMIT. stopped: it was given
// up on after the load's grace period.
func judgeCommit(err error, stopped bool) txStep {
	if stopped {
		return txSettle
	}
	switch classify(err) {
	case classUnknown:
		return txSettle
	case classPermanent:
		return txReport
	case classTooLarge:
		return txShrink // a write set over the cluster's limit: smaller ones pass
	}
	return txReplay // never sent, or rolled back (a certification conflict)
}

// countsBytes reports whether a failed attempt's bytes reached the server.
func countsBytes(err error) bool {
	cl := classify(err)
	return cl != classNotSent && cl != classTooLarge
}
