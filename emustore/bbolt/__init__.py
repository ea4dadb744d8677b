"""bbolt (go.etcd.io/bbolt) databases, read and written by our own code from the file format facts.

`reader.open_db` / `reader.dump` read a database, bounded and checked; `writer.update` changes one
copy-on-write (new pages first, fsync'd, then the next meta page), so a crash leaves the previous
state; `pages` holds the on-disk codecs both use.
"""
