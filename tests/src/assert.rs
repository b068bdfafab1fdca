//! Scenario expectations: a scenario body returns [`Check`], the first unmet expectation with
//! its last observed value.

/// The outcome of a scenario body.
pub type Check = Result<(), String>;

/// `Err(message())` unless `cond`.
pub fn ensure(cond: bool, message: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(message()) }
}

/// Number of changes of a sequence of values, and whether it reversed direction.
pub fn changes_and_reversal(values: &[f64]) -> (usize, bool) {
    let mut changes = 0;
    let mut last_dir = 0i8;
    let mut reversed = false;
    for w in values.windows(2) {
        let dir = if w[1] > w[0] {
            1
        } else if w[1] < w[0] {
            -1
        } else {
            0
        };
        if dir != 0 {
            changes += 1;
            if last_dir != 0 && dir != last_dir {
                reversed = true;
            }
            last_dir = dir;
        }
    }
    (changes, reversed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_changes_and_detects_a_reversal() {
        assert_eq!(changes_and_reversal(&[1.0, 1.0, 2.0, 2.0]), (1, false));
        assert_eq!(changes_and_reversal(&[1.0, 2.0, 1.0]), (2, true));
        assert_eq!(changes_and_reversal(&[3.0, 2.0, 1.0]), (2, false));
        assert_eq!(changes_and_reversal(&[]), (0, false));
    }

    #[test]
    fn ensure_reports_the_message_only_on_failure() {
        assert!(ensure(true, || "x".into()).is_ok());
        assert_eq!(ensure(false, || "x".into()), Err("x".to_string()));
    }
}
