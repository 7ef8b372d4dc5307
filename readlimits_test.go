package batch_test

import (
	"context"
	"testing"

	"github.com/batchsql/batch"
)

func TestReadLimits(t *testing.T) {
	db, cfg := sharedDB(t, "")
	var want int
	if err := db.QueryRow("SELECT @@max_allowed_packet").Scan(&want); err != nil {
		t.Fatal(err)
	}
	l, err := batch.ReadLimits(context.Background(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxAllowedPacket != want || !l.ClientKnown || l.Packet() != min(cfg.MaxAllowedPacket, l.ServerPacket()) || l.Version == "" {
		t.Errorf("ReadLimits = %+v; want max_allowed_packet %d, the client limit known, Packet = min(M, server)", l, want)
	}
}
