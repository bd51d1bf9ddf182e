package sql

import (
	"context"
	"fmt"
	"slices"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/xbt-tracker/xbt-tracker/tracker"
)

// DeleteFiles deletes the xbt_files rows with these fids, but only those
// still flagged deleted (flags & 1): XBT's polite delete, done by the
// tracker once it has dropped the torrents from memory. A catalog that
// un-flagged a row in the meantime keeps it. xbt_files_users rows are left
// alone, like XBT does.
func (w *Writer) DeleteFiles(ctx context.Context, fids []uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(fids) == 0 {
		return nil
	}
	p, err := newDeletePart(w.s, fids)
	if err != nil {
		return err
	}
	per := w.chunkRows(p)
	for lo := 0; lo < p.len(); lo += per {
		hi := min(lo+per, p.len())
		q, args, err := p.build(lo, hi)
		if err != nil {
			return fmt.Errorf("delete from %s: build statement: %w", w.s.Files, err)
		}
		backoff := w.o.Backoff
		for attempt := 1; ; attempt++ {
			_, err = w.db.ExecContext(ctx, q, args...)
			if err == nil || !retryable(err) || attempt >= w.o.MaxAttempts {
				break
			}
			w.stats.retries.Add(1)
			select {
			case <-ctx.Done():
				return fmt.Errorf("delete from %s: %w", w.s.Files, ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		if err != nil {
			return fmt.Errorf("delete from %s: %w", w.s.Files, err)
		}
	}
	return nil
}

// deletePart: DeleteFiles' chunks. Only rows still flagged deleted go.
type deletePart struct {
	files, fid string
	name       string
	fids       []uint32
}

func newDeletePart(s Schema, fids []uint32) (*deletePart, error) {
	files, err := quoteIdent(s.Files)
	if err != nil {
		return nil, fmt.Errorf("delete from %s: %w", s.Files, err)
	}
	fid, err := quoteIdent(s.FilesFid)
	if err != nil {
		return nil, fmt.Errorf("delete from %s: %w", s.Files, err)
	}
	sorted := slices.Clone(fids)
	slices.Sort(sorted)
	return &deletePart{files: files, fid: fid, name: s.Files, fids: slices.Compact(sorted)}, nil
}

func (p *deletePart) table() string   { return p.name }
func (p *deletePart) len() int        { return len(p.fids) }
func (p *deletePart) cols() int       { return 1 }
func (p *deletePart) fixedBytes() int { return 128 }
func (p *deletePart) rowBytes() int   { return numBytes }

func (p *deletePart) build(lo, hi int) (string, []any, error) {
	return sq.Delete(p.files).Where(sq.Eq{p.fid: p.fids[lo:hi]}).Where("`flags` & 1 = 1").ToSql()
}

func (p *deletePart) restore(*tracker.Batch, int, int) {}

func (p *deletePart) key(i int) rowKey { return rowKey{kind: kindFile, a: p.fids[i]} }

func (p *deletePart) row(i int) rowInfo {
	return rowInfo{key: p.key(i), text: fmt.Sprintf("fid=%d", p.fids[i])}
}
