package rdb

import "fmt"

// frameValue consumes one value of type typ, understanding just enough of it to find its end.
// Strings inside (ziplists, listpacks, members) are skipped, never held.
func frameValue(in *input, typ byte) error {
	if frameBuffered(in, typ) {
		return nil
	}
	switch typ {
	case TypeString, TypeHashZipmap, TypeListZiplist, TypeSetIntset, TypeZSetZiplist,
		TypeHashZiplist, TypeHashListpack, TypeZSetListpack, TypeSetListpack,
		TypeHashListpackExPreGA:
		return in.skipString()
	case TypeHashListpackEx:
		if err := in.skip(8); err != nil {
			return err
		}
		return in.skipString()
	case TypeList, TypeSet, TypeListQuicklist:
		return frameCount(in, func() error { return in.skipString() })
	case TypeHash:
		return frameCount(in, func() error {
			if err := in.skipString(); err != nil {
				return err
			}
			return in.skipString()
		})
	case TypeZSet:
		return frameCount(in, func() error {
			if err := in.skipString(); err != nil {
				return err
			}
			return in.skipStringDouble()
		})
	case TypeZSet2:
		return frameCount(in, func() error {
			if err := in.skipString(); err != nil {
				return err
			}
			return in.skip(8)
		})
	case TypeListQuicklist2:
		return frameCount(in, func() error {
			if _, err := in.readPlainLen(); err != nil {
				return err
			}
			return in.skipString()
		})
	case TypeHashMetadata, TypeHashMetadataPreGA:
		if typ == TypeHashMetadata {
			if err := in.skip(8); err != nil {
				return err
			}
		}
		return frameCount(in, func() error {
			if _, err := in.readPlainLen(); err != nil {
				return err
			}
			if err := in.skipString(); err != nil {
				return err
			}
			return in.skipString()
		})
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return frameStream(in, typ)
	case TypeModule2:
		if _, err := in.readPlainLen(); err != nil {
			return err
		}
		return frameModuleOps(in)
	case TypeModule:
		return fmt.Errorf("module value of the 4.0 pre-release format cannot be framed: %w", ErrUnsupported)
	}
	return fmt.Errorf("unknown value type %d: %w", typ, ErrUnsupported)
}

// frameCount reads a count, then calls one for each item.
func frameCount(in *input, one func() error) error {
	n, err := in.readPlainLen()
	if err != nil {
		return err
	}
	for ; n > 0; n-- {
		if err := one(); err != nil {
			return err
		}
	}
	return nil
}

// frameModuleOps consumes module-serialized data (module v2 values, module aux) up to its EOF
// opcode.
func frameModuleOps(in *input) error {
	for {
		op, err := in.readPlainLen()
		if err != nil {
			return err
		}
		switch op {
		case moduleOpEOF:
			return nil
		case moduleOpSInt, moduleOpUInt:
			_, err = in.readPlainLen()
		case moduleOpFloat:
			err = in.skip(4)
		case moduleOpDouble:
			err = in.skip(8)
		case moduleOpString:
			err = in.skipString()
		default:
			err = corrupt("unknown module opcode %d", op)
		}
		if err != nil {
			return err
		}
	}
}

func frameStream(in *input, typ byte) error {
	err := frameCount(in, func() error { // listpacks: master ID, listpack
		if err := in.skipString(); err != nil {
			return err
		}
		return in.skipString()
	})
	if err != nil {
		return err
	}
	lens := 3 // length, last ID
	if typ >= TypeStreamListpacks2 {
		lens += 5 // first ID, max deleted ID, entries added
	}
	for range lens {
		if _, err := in.readPlainLen(); err != nil {
			return err
		}
	}
	return frameCount(in, func() error { // consumer groups
		if err := in.skipString(); err != nil {
			return err
		}
		n := 2 // last ID
		if typ >= TypeStreamListpacks2 {
			n++ // entries read
		}
		for range n {
			if _, err := in.readPlainLen(); err != nil {
				return err
			}
		}
		err := frameCount(in, func() error { // global PEL: raw ID, delivery time, count
			if err := in.skip(16 + 8); err != nil {
				return err
			}
			_, err := in.readPlainLen()
			return err
		})
		if err != nil {
			return err
		}
		return frameCount(in, func() error { // consumers
			if err := in.skipString(); err != nil {
				return err
			}
			t := uint64(8) // seen time
			if typ >= TypeStreamListpacks3 {
				t += 8 // active time
			}
			if err := in.skip(t); err != nil {
				return err
			}
			return frameCount(in, func() error { return in.skip(16) })
		})
	})
}
