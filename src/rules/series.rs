//! promtool's series notation for rule tests: `1 2 3`, `0+10x5` (0, 10, …, 50), `5-1x3`,
//! `2x3` (2 four times), `_` (no sample), `_x3`. Pure.

/// The values, one per interval; `None` where a sample is missing.
pub fn expand(notation: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for item in notation.split_whitespace() {
        let (head, times) = match item.rsplit_once('x') {
            Some((head, n)) => (
                head,
                Some(n.parse::<usize>().map_err(|_| format!("{item:?}: the count after 'x' must be a whole number"))?),
            ),
            None => (item, None),
        };
        if head == "_" {
            out.extend(std::iter::repeat_n(None, times.map_or(1, |n| n + 1)));
            continue;
        }
        let sign_at = head.char_indices().skip(1).find(|(_, c)| *c == '+' || *c == '-').map(|(i, _)| i);
        let (start, step) = match (sign_at, times) {
            (Some(at), Some(_)) if !head[..at].ends_with(['e', 'E']) => {
                let start = parse(&head[..at], item)?;
                let step = parse(&head[at..], item)?;
                (start, step)
            }
            _ => (parse(head, item)?, 0.0),
        };
        for k in 0..=times.unwrap_or(0) {
            out.push(Some(start + step * k as f64));
        }
    }
    Ok(out)
}

fn parse(text: &str, item: &str) -> Result<f64, String> {
    text.trim_start_matches('+').parse().map_err(|_| format!("{item:?} is not a number or a+bxN"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_form() {
        assert_eq!(expand("1 2.5 _").unwrap(), vec![Some(1.0), Some(2.5), None]);
        assert_eq!(expand("0+10x3").unwrap(), vec![Some(0.0), Some(10.0), Some(20.0), Some(30.0)]);
        assert_eq!(expand("5-1x2").unwrap(), vec![Some(5.0), Some(4.0), Some(3.0)]);
        assert_eq!(expand("0.2x2 _x1").unwrap(), vec![Some(0.2), Some(0.2), Some(0.2), None, None]);
        assert_eq!(expand("-1+1x1").unwrap(), vec![Some(-1.0), Some(0.0)]);
        assert!(expand("1+x").is_err());
        assert!(expand("abc").is_err());
    }
}
