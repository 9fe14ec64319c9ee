"""What each area measures, as data: one table per area naming each concept with where it goes.

A concept is exported (a family in the catalog) and/or stored (a column of the area's store table).
These tables sit on the ground floor, next to the value types, so both the store (its columns) and
the collectors (which values to export raw and which to hand to the store) derive from one place.

    gpu.py      every GPU field campwatch can read, with `stored`
    engine.py   every serving-engine concept, with `exported` (raw) and `stored`
"""
