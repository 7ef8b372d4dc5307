package faultproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Command bytes: the first payload byte of a client command.
const (
	ComQuit             byte = 0x01
	ComInitDB           byte = 0x02
	ComQuery            byte = 0x03
	ComStatistics       byte = 0x09
	ComPing             byte = 0x0e
	ComChangeUser       byte = 0x11
	ComStmtPrepare      byte = 0x16
	ComStmtExecute      byte = 0x17
	ComStmtSendLongData byte = 0x18 // no reply
	ComStmtClose        byte = 0x19 // no reply
	ComStmtReset        byte = 0x1a
	ComSetOption        byte = 0x1b
	ComResetConnection  byte = 0x1f
)

// replyKind is the shape of the server's reply to a command.
type replyKind int

const (
	replyUnknown replyKind = iota // a reply the proxy does not follow
	replyNone                     // no reply: COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA
	replyOne                      // one packet: OK, ERR or EOF (or COM_STATISTICS's string)
	replyResult                   // OK, ERR or result sets (COM_QUERY, COM_STMT_EXECUTE)
	replyPrepare                  // COM_STMT_PREPARE_OK and definitions, or ERR
	replyAuth                     // an authentication exchange ending in OK or ERR (COM_CHANGE_USER)
)

func replyOf(cmd byte) replyKind {
	switch cmd {
	case ComQuery, ComStmtExecute:
		return replyResult
	case ComStmtPrepare:
		return replyPrepare
	case ComInitDB, ComStatistics, ComPing, ComStmtReset, ComSetOption, ComResetConnection:
		return replyOne
	case ComQuit, ComStmtSendLongData, ComStmtClose:
		return replyNone
	case ComChangeUser:
		return replyAuth
	}
	return replyUnknown
}

// counted tells whether rules count commands with command byte cmd.
func counted(cmd byte) bool {
	switch replyOf(cmd) {
	case replyOne, replyResult, replyPrepare:
		return true
	}
	return false
}

// Command is a client command, as a Rule's Match sees it.
type Command struct {
	Conn int  // connection number, from 1, in accept order
	Cmd  byte // command byte, e.g. ComStmtExecute
	// Seq is the sequence id of the command's (last) packet; the reply
	// starts at Seq+1.
	Seq byte
	// SQL is the statement text of a COM_QUERY or COM_STMT_PREPARE; for a
	// COM_STMT_EXECUTE, that of the statement as prepared through the
	// proxy on the same connection ("" if not seen).
	SQL string
	// Payload is the command's whole payload, command byte first. It is
	// only valid during the Match call and must not be modified.
	Payload []byte
}

// ErrPacket is a MySQL ERR packet to send to the client: payload 0xFF,
// Number (2 bytes little-endian), '#', SQLState (5 bytes), Message.
type ErrPacket struct {
	Number   uint16
	SQLState string // five characters; empty means "HY000"
	Message  string
}

// encode returns the ERR packet, header included, with sequence id seq.
func (e *ErrPacket) encode(seq byte) []byte {
	state := e.SQLState
	if state == "" {
		state = "HY000"
	}
	n := 1 + 2 + 1 + len(state) + len(e.Message)
	b := []byte{byte(n), byte(n >> 8), byte(n >> 16), seq, 0xff}
	b = binary.LittleEndian.AppendUint16(b, e.Number)
	b = append(b, '#')
	b = append(b, state...)
	return append(b, e.Message...)
}

// Rule injects a fault into the Nth client command that Match accepts. Only
// commands whose reply the proxy can follow are counted: COM_QUERY,
// COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_INIT_DB, COM_PING,
// COM_STATISTICS, COM_STMT_RESET, COM_SET_OPTION and COM_RESET_CONNECTION
// (never commands without a reply, such as COM_STMT_CLOSE).
//
// What happens to that command:
//
//   - Forward false, Err set: the server never gets it; the client gets Err
//     as the reply, with the right sequence id.
//   - Forward true, Err set: the server runs it; its whole reply is
//     swallowed and the client gets Err instead ("ran, but the client got
//     an error"). The proxy acts only once the server's reply has ended, so
//     the command has finished on the server by the time the client hears
//     of it.
//   - Close: after Err (if any) the connection is closed: with Err, by an
//     orderly close (FIN) once Err is sent, so the client reads Err and
//     then end-of-file, like TiDB's "result undetermined" disconnect (what
//     the client still sends is dropped, not answered by an RST); without
//     Err, by a reset (RST). Forward true, Err nil, Close true is a lost
//     reply: the server ran the command and replied, the client only sees
//     its connection reset. Forward false, Err nil, Close true is a lost
//     request.
//
// Err nil without Close would leave the client waiting forever and is
// refused.
type Rule struct {
	// Match selects the commands that count; nil counts every command
	// above. It must not call the Proxy's methods.
	Match func(Command) bool
	// Nth is which match triggers the rule, from 1 (0 means 1), counted
	// from when the rule was added, over all connections.
	Nth     int
	Forward bool
	Err     *ErrPacket
	Close   bool
}

func (r Rule) check() error {
	switch {
	case r.Nth < 0:
		return fmt.Errorf("faultproxy: Rule.Nth %d < 0", r.Nth)
	case r.Err == nil && !r.Close:
		return errors.New("faultproxy: a Rule needs Err or Close")
	case r.Err != nil && r.Err.SQLState != "" && len(r.Err.SQLState) != 5:
		return fmt.Errorf("faultproxy: SQLState %q is not 5 characters", r.Err.SQLState)
	case r.Err != nil && len(r.Err.Message) > 1<<20:
		return errors.New("faultproxy: Err.Message too long")
	}
	return nil
}

// IsCommand returns a Match for the commands with command byte cmd.
func IsCommand(cmd byte) func(Command) bool {
	return func(c Command) bool { return c.Cmd == cmd }
}

// SQLContains returns a Match for the commands with command byte cmd whose
// SQL contains substr (see Command.SQL), e.g.
// SQLContains(ComStmtExecute, "INSERT INTO t").
func SQLContains(cmd byte, substr string) func(Command) bool {
	return func(c Command) bool { return c.Cmd == cmd && strings.Contains(c.SQL, substr) }
}

// Injection records a rule that fired.
type Injection struct {
	Rule    int     // index of the rule: Options.Rules first, then Inject calls
	Command Command // the command it fired on (without Payload)
}

// ruleState is a Rule and its count.
type ruleState struct {
	Rule
	index int
	seen  int
	fired bool
}

// Inject adds a rule; its Nth match from now on triggers it. The proxy must
// have been started with Options.MySQL (or Rules).
func (p *Proxy) Inject(r Rule) error {
	if !p.opts.MySQL {
		return errors.New("faultproxy: Inject needs Options.MySQL")
	}
	if err := r.check(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addRuleLocked(r)
	return nil
}

func (p *Proxy) addRuleLocked(r Rule) {
	if r.Nth == 0 {
		r.Nth = 1
	}
	p.rules = append(p.rules, &ruleState{Rule: r, index: p.nrules})
	p.nrules++
}

// Injections returns the rules that fired so far, in order.
func (p *Proxy) Injections() []Injection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Injection(nil), p.injections...)
}

// match counts c against the rules and returns the rule it triggers, if
// any. Match functions run without the lock. A command triggers at most one
// rule, the earliest added; the others whose Nth match it would have been
// do not count it.
func (p *Proxy) match(c Command) *Rule {
	if !counted(c.Cmd) {
		return nil
	}
	p.mu.Lock()
	rules := append([]*ruleState(nil), p.rules...)
	p.mu.Unlock()
	hit := make([]bool, len(rules))
	for i, r := range rules {
		hit[i] = !r.fired && (r.Match == nil || r.Match(c))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var fire *ruleState
	for i, r := range rules {
		if !hit[i] || r.fired || (fire != nil && r.seen+1 == r.Nth) {
			continue
		}
		if r.seen++; r.seen == r.Nth {
			r.fired, fire = true, r
		}
	}
	if fire == nil {
		return nil
	}
	c.Payload = nil
	p.injections = append(p.injections, Injection{Rule: fire.index, Command: c})
	p.dropFiredLocked()
	return &fire.Rule
}

// dropFiredLocked forgets the rules that have fired.
func (p *Proxy) dropFiredLocked() {
	kept := p.rules[:0]
	for _, r := range p.rules {
		if !r.fired {
			kept = append(kept, r)
		}
	}
	clear(p.rules[len(kept):])
	p.rules = kept
}
