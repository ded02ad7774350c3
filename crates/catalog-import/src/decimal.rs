//! Exact decimals from JSON number literals. LiteLLM's price map writes prices as JSON numbers
//! (`3e-06`, `1.25e-07`, `0.00015`); reading them as `f64` would turn `1.1e-06` into
//! 0.0000011000000000000001. The literal text is read instead (serde_json's `RawValue`) and
//! converted digit by digit, so the decimal is exactly what the file says.

use rust_decimal::Decimal;

/// Prices finer than this many decimals (one pico-dollar per token) cannot be billed exactly.
pub const MAX_SCALE: u32 = 12;

/// The exact value of a JSON number literal, normalized (no trailing zeros).
pub fn parse_literal(text: &str) -> Result<Decimal, String> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = text[i + 1..]
                .parse()
                .map_err(|_| format!("'{text}' is not a number"))?;
            (&text[..i], exp)
        }
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err(format!("'{text}' is not a number"));
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let frac_len = i32::try_from(frac.len()).map_err(|_| format!("'{text}' is too long"))?;
    let mut scale = frac_len - exponent;
    let mut digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits.to_string()
    };
    if scale < 0 {
        digits.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        scale = 0;
    }
    let mantissa: i128 = digits
        .parse()
        .map_err(|_| format!("'{text}' has too many digits"))?;
    let scale = u32::try_from(scale).map_err(|_| format!("'{text}' is out of range"))?;
    if scale > 28 {
        // Trailing zeros may still bring it into range, e.g. 1.50000000000000000000000000000e-1.
        let trimmed = mantissa_trim(mantissa, scale);
        return trimmed.ok_or_else(|| format!("'{text}' has more than {MAX_SCALE} decimals"));
    }
    let value =
        Decimal::try_from_i128_with_scale(if negative { -mantissa } else { mantissa }, scale)
            .map_err(|_| format!("'{text}' is out of range"))?;
    Ok(value.normalize())
}

fn mantissa_trim(mut mantissa: i128, mut scale: u32) -> Option<Decimal> {
    while scale > 28 && mantissa % 10 == 0 && mantissa != 0 {
        mantissa /= 10;
        scale -= 1;
    }
    if mantissa == 0 {
        return Some(Decimal::ZERO);
    }
    (scale <= 28).then(|| Decimal::from_i128_with_scale(mantissa, scale).normalize())
}

/// A per-token price: non-negative and no finer than [`MAX_SCALE`] decimals.
pub fn price(text: &str) -> Result<Decimal, String> {
    let value = parse_literal(text)?;
    if value.is_sign_negative() {
        return Err(format!("price {text} is negative"));
    }
    if value.scale() > MAX_SCALE {
        return Err(format!(
            "price {text} has more than {MAX_SCALE} decimals ({value}); it cannot be billed exactly"
        ));
    }
    Ok(value)
}

/// A token count written as a JSON number (`128000` or `2000000.0`).
pub fn count(text: &str) -> Result<u64, String> {
    let value = parse_literal(text)?;
    if value.is_sign_negative() || value.fract() != Decimal::ZERO {
        return Err(format!("'{text}' is not a whole number"));
    }
    u64::try_from(value).map_err(|_| format!("'{text}' is out of range"))
}

/// The decimal as a plain string, never in exponent notation.
pub fn plain(value: Decimal) -> String {
    value.normalize().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn literals_convert_without_float_artefacts() {
        for (text, expected) in [
            ("3e-06", "0.000003"),
            ("1.1e-06", "0.0000011"),
            ("1.25e-07", "0.000000125"),
            ("2.1875e-06", "0.0000021875"),
            ("0.00015", "0.00015"),
            ("1.5E-5", "0.000015"),
            ("0", "0"),
            ("0.0", "0"),
            ("7.5e-08", "0.000000075"),
            ("1e-12", "0.000000000001"),
            ("12", "12"),
            ("1.2e1", "12"),
        ] {
            assert_eq!(plain(price(text).unwrap()), expected, "{text}");
        }
    }

    #[test]
    fn finer_than_twelve_decimals_is_rejected() {
        assert!(price("1e-13").unwrap_err().contains("12 decimals"));
        assert!(price("1.0000000000001e-06").is_err());
        assert!(price("-1e-06").is_err());
        assert!(price("abc").is_err());
        assert!(price("1e").is_err());
        // Trailing zeros do not count as precision.
        assert_eq!(plain(price("1.000000000000000e-06").unwrap()), "0.000001");
    }

    #[test]
    fn counts_accept_whole_floats() {
        assert_eq!(count("2000000.0").unwrap(), 2_000_000);
        assert_eq!(count("128000").unwrap(), 128_000);
        assert!(count("1.5").is_err());
    }
}
