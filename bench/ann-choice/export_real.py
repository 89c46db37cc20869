#!/usr/bin/env python3
# Writes the embeddings of a visage SQLite database for ann-choice --fit / --real:
# per face a little-endian u32 person index, then the f32 values.
# python3 export_real.py DB OUT MODEL_PREFIX   (e.g. sface+dlib)
import sqlite3, struct, sys
db, out, model_prefix = sys.argv[1], sys.argv[2], sys.argv[3]
con = sqlite3.connect(db)
rows = con.execute("SELECT person_id, embedding FROM faces WHERE model LIKE ? ORDER BY person_id", (model_prefix + '%',)).fetchall()
ids = {}
with open(out, 'wb') as f:
    for p, e in rows:
        i = ids.setdefault(p, len(ids))
        f.write(struct.pack('<I', i)); f.write(e)
print(len(rows), 'faces', len(ids), 'persons', len(rows[0][1]) // 4, 'dims')
