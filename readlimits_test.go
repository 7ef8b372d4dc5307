package batch_test

import (
	"context"
	"testing"

	"github.com/batchsql/batch"
)

func TestReadLimits(t *testing.T) {
	db, cfg := sharedDB(t, "")
	want := queryInt(t, db, "SELECT @@max_allowed_packet")
	l, err := batch.ReadLimits(context.Background(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxAllowedPacket != want || !l.ClientKnown || l.Compressed || l.Packet() != min(cfg.MaxAllowedPacket, max(l.MaxAllowedPacket, l.NetBufferLength)-1) || l.Version == "" {
		t.Errorf("ReadLimits = %+v; want max_allowed_packet %d, the client limit known, Packet = min(M, server)", l, want)
	}
}
