package rdb

import (
	"encoding/binary"
	"io"
	"strconv"
)

// nextStream yields the next live entry of a stream, then reads the metadata and returns io.EOF.
func (r *ValueReader) nextStream(el *Element) error {
	for {
		if r.stream == nil {
			if r.count == 0 {
				return r.readStreamMeta()
			}
			if err := r.loadStreamListpack(); err != nil {
				return err
			}
		}
		live, err := r.streamEntry(el)
		if err == errEnd {
			r.stream = nil
			continue
		}
		if err != nil || live {
			return err
		}
	}
}

func (r *ValueReader) lpNext() (lpItem, error) {
	s, n, isInt, err := r.stream.next()
	return lpItem{s, n, isInt}, err
}

func (r *ValueReader) lpInt() (int64, error) {
	it, err := r.lpNext()
	if err == errEnd {
		return 0, corrupt("stream listpack ends inside an entry")
	}
	if err == nil && !it.isInt {
		var perr error
		if it.n, perr = strconv.ParseInt(string(it.s), 10, 64); perr != nil {
			return 0, corrupt("stream listpack: integer expected, got %q", it.s)
		}
	}
	return it.n, err
}

func (r *ValueReader) loadStreamListpack() error {
	r.count--
	var err error
	if r.a, err = r.in.readString(r.a[:0], 64); err != nil {
		return err
	}
	if len(r.a) != 16 {
		return corrupt("stream node key of %d bytes", len(r.a))
	}
	r.master = StreamID{binary.BigEndian.Uint64(r.a), binary.BigEndian.Uint64(r.a[8:])}
	if r.blob, err = r.in.readString(r.blob[:0], maxElement); err != nil {
		return err
	}
	if r.stream, err = newListpackIter(r.blob); err != nil {
		return err
	}
	// master entry: count, deleted, number of fields, fields, 0
	for range 2 {
		if _, err := r.lpInt(); err != nil {
			return err
		}
	}
	nf, err := r.lpInt()
	if err != nil {
		return err
	}
	if nf < 0 || nf > int64(len(r.blob)) {
		return corrupt("stream master entry with %d fields", nf)
	}
	r.masterFields = r.masterFields[:0]
	for range nf {
		it, err := r.lpNext()
		if err == errEnd {
			return corrupt("stream listpack ends inside the master entry")
		}
		if err != nil {
			return err
		}
		r.masterFields = append(r.masterFields, it)
	}
	_, err = r.lpInt()
	return err
}

// streamEntry reads one entry of the current listpack; live is false for a deleted entry.
func (r *ValueReader) streamEntry(el *Element) (live bool, err error) {
	it, err := r.lpNext()
	if err != nil {
		return false, err // errEnd: listpack done
	}
	flags := it.n
	if !it.isInt {
		return false, corrupt("stream entry flags %q", it.s)
	}
	msDiff, err := r.lpInt()
	if err != nil {
		return false, err
	}
	seqDiff, err := r.lpInt()
	if err != nil {
		return false, err
	}
	r.items = r.items[:0]
	if flags&streamItemSameFields != 0 {
		for _, f := range r.masterFields {
			v, err := r.lpNext()
			if err == errEnd {
				return false, corrupt("stream listpack ends inside an entry")
			}
			if err != nil {
				return false, err
			}
			r.items = append(r.items, f, v)
		}
	} else {
		nf, err := r.lpInt()
		if err != nil {
			return false, err
		}
		if nf < 0 || nf > int64(len(r.blob)) {
			return false, corrupt("stream entry with %d fields", nf)
		}
		for range 2 * nf {
			v, err := r.lpNext()
			if err == errEnd {
				return false, corrupt("stream listpack ends inside an entry")
			}
			if err != nil {
				return false, err
			}
			r.items = append(r.items, v)
		}
	}
	if _, err := r.lpInt(); err != nil { // lp-count
		return false, err
	}
	if flags&streamItemDeleted != 0 {
		return false, nil
	}
	el.ID = StreamID{r.master.Ms + uint64(msDiff), r.master.Seq + uint64(seqDiff)}
	if !r.sawFirst {
		r.sawFirst, r.meta.FirstID = true, el.ID
	}
	r.fbuf = r.fbuf[:0]
	for _, x := range r.items {
		if x.isInt {
			r.fbuf = strconv.AppendInt(r.fbuf, x.n, 10)
		}
	}
	r.fields = r.fields[:0]
	off := 0
	for _, x := range r.items {
		if x.isInt {
			start := off
			off = len(strconv.AppendInt(r.fbuf[:start], x.n, 10))
			r.fields = append(r.fields, r.fbuf[start:off:off])
		} else {
			r.fields = append(r.fields, x.s)
		}
	}
	el.Fields = r.fields
	return true, nil
}

func (r *ValueReader) readID() (StreamID, error) {
	ms, err := r.in.readPlainLen()
	if err != nil {
		return StreamID{}, err
	}
	seq, err := r.in.readPlainLen()
	return StreamID{ms, seq}, err
}

func (r *ValueReader) readRawID() (StreamID, error) {
	if err := r.in.readFull(r.in.num[:16]); err != nil {
		return StreamID{}, err
	}
	return StreamID{binary.BigEndian.Uint64(r.in.num[:8]), binary.BigEndian.Uint64(r.in.num[8:16])}, nil
}

func (r *ValueReader) readStreamMeta() error {
	m := &r.meta
	var err error
	if m.Length, err = r.in.readPlainLen(); err != nil {
		return err
	}
	if m.LastID, err = r.readID(); err != nil {
		return err
	}
	v2 := r.typ >= TypeStreamListpacks2
	if v2 {
		if m.FirstID, err = r.readID(); err != nil {
			return err
		}
		if m.MaxDeletedID, err = r.readID(); err != nil {
			return err
		}
		if m.EntriesAdded, err = r.in.readPlainLen(); err != nil {
			return err
		}
	} else {
		m.EntriesAdded = m.Length
	}
	ngroups, err := r.in.readPlainLen()
	if err != nil {
		return err
	}
	for ; ngroups > 0; ngroups-- {
		g := StreamGroup{EntriesRead: -1}
		if g.Name, err = r.in.readString(nil, maxElement); err != nil {
			return err
		}
		if g.LastID, err = r.readID(); err != nil {
			return err
		}
		if v2 {
			n, err := r.in.readPlainLen()
			if err != nil {
				return err
			}
			g.EntriesRead = int64(n)
		}
		npel, err := r.in.readPlainLen()
		if err != nil {
			return err
		}
		for ; npel > 0; npel-- {
			var nack StreamNACK
			if nack.ID, err = r.readRawID(); err != nil {
				return err
			}
			t, err := r.in.readUint64LE()
			if err != nil {
				return err
			}
			nack.DeliveryTime = int64(t)
			if nack.DeliveryCount, err = r.in.readPlainLen(); err != nil {
				return err
			}
			g.PEL = append(g.PEL, nack)
		}
		ncons, err := r.in.readPlainLen()
		if err != nil {
			return err
		}
		for ; ncons > 0; ncons-- {
			var c StreamConsumer
			if c.Name, err = r.in.readString(nil, maxElement); err != nil {
				return err
			}
			t, err := r.in.readUint64LE()
			if err != nil {
				return err
			}
			c.SeenTime, c.ActiveTime = int64(t), int64(t)
			if r.typ >= TypeStreamListpacks3 {
				if t, err = r.in.readUint64LE(); err != nil {
					return err
				}
				c.ActiveTime = int64(t)
			}
			n, err := r.in.readPlainLen()
			if err != nil {
				return err
			}
			for ; n > 0; n-- {
				id, err := r.readRawID()
				if err != nil {
					return err
				}
				c.PEL = append(c.PEL, id)
			}
			g.Consumers = append(g.Consumers, c)
		}
		m.Groups = append(m.Groups, g)
	}
	return io.EOF
}
