//! backend-file: not written yet (see its issue).
