//! Sample values as Go's `strconv.ParseFloat` reads them (the Prometheus text parser's rules).

/// Parses a sample value the way Prometheus 2.42 does.
///
/// Accepted: decimal numbers with an optional sign, fraction and exponent (`1`, `-1.5`, `.5`,
/// `1.`, `6e-3`); `Inf`/`Infinity` with an optional sign and `NaN` without one, in any case.
/// Rejected: hexadecimal floats, underscores, `+NaN`, and finite literals that overflow `f64`
/// (Go's `ErrRange`). Underflow rounds to zero or a subnormal, as in Go.
pub(crate) fn parse_go_float(text: &str) -> Result<f64, FloatError> {
    let bytes = text.as_bytes();
    let (negative, unsigned) = match bytes.first() {
        Some(b'+') => (false, &text[1..]),
        Some(b'-') => (true, &text[1..]),
        Some(_) => (false, text),
        None => return Err(FloatError::Syntax),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if text.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    if !is_decimal_literal(unsigned.as_bytes()) {
        return Err(FloatError::Syntax);
    }
    // The grammar above is a subset of what Rust's parser accepts, so this cannot fail; map it
    // to a syntax error anyway rather than trusting that.
    let value: f64 = text.parse().map_err(|_| FloatError::Syntax)?;
    if value.is_infinite() {
        return Err(FloatError::OutOfRange);
    }
    Ok(value)
}

/// Why a value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatError {
    /// Not a number in Go's decimal syntax.
    Syntax,
    /// A finite literal too large for `f64`.
    OutOfRange,
}

impl FloatError {
    /// The message used in a parse error.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FloatError::Syntax => "invalid syntax",
            FloatError::OutOfRange => "value out of range",
        }
    }
}

/// `digits [. digits?] | . digits`, then an optional exponent `[eE] [+-]? digits`.
fn is_decimal_literal(b: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = count_digits(&b[i..]);
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = count_digits(&b[i..]);
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = count_digits(&b[i..]);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_forms_parse() {
        for (text, want) in [
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            (".5", 0.5),
            ("1.", 1.0),
            ("6e-3", 0.006),
            ("1E+2", 100.0),
            ("0.0000", 0.0),
            ("1e-400", 0.0),
        ] {
            assert_eq!(parse_go_float(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn specials_are_case_insensitive() {
        for text in ["Inf", "+inf", "INF", "infinity", "+Infinity", "iNfInItY"] {
            assert_eq!(parse_go_float(text), Ok(f64::INFINITY), "{text}");
        }
        for text in ["-Inf", "-INFINITY"] {
            assert_eq!(parse_go_float(text), Ok(f64::NEG_INFINITY), "{text}");
        }
        for text in ["NaN", "nan", "NAN"] {
            assert!(parse_go_float(text).is_ok_and(f64::is_nan), "{text}");
        }
    }

    #[test]
    fn go_rejects_what_rust_would_accept() {
        for text in [
            "+nan", "-NaN", "infin", "0x1p-2", "1_000", "", "+", ".", "1e", "e5", "1.2.3", "1 ",
            "--1", "0x10",
        ] {
            assert_eq!(parse_go_float(text), Err(FloatError::Syntax), "{text:?}");
        }
    }

    #[test]
    fn finite_overflow_is_out_of_range() {
        assert_eq!(parse_go_float("1e400"), Err(FloatError::OutOfRange));
        assert_eq!(parse_go_float("-1e309"), Err(FloatError::OutOfRange));
        assert_eq!(parse_go_float("1.7976931348623157e308"), Ok(f64::MAX));
    }
}
