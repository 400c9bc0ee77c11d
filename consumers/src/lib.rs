//! The consumer runtime and the five consumer groups (to come).
