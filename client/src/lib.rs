//! Event types for the eight agent topics, the topic catalog and the producer (to come).
