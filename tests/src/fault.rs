//! Fault-injecting servers for the reliability suite (issue 7).
