//! serde seeds that borrow strings from the input and fall back to the request's arena only
//! when a string had escapes, so label sets cost no heap allocation per sample.

use std::fmt;

use bumpalo::Bump;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Deserializes a string as `&'a str`, copying into `bump` only when it had escapes.
pub struct BumpStr<'a>(pub &'a Bump);

impl<'de: 'a, 'a> DeserializeSeed<'de> for BumpStr<'a> {
    type Value = &'a str;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<&'a str, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for BumpStr<'a> {
    type Value = &'a str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<&'a str, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<&'a str, E> {
        Ok(self.0.alloc_str(v))
    }
}

/// Deserializes `{"name": "value", …}` into a reused vector of pairs.
pub struct LabelsSeed<'b, 'a> {
    pub bump: &'a Bump,
    pub out: &'b mut Vec<(&'a str, &'a str)>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for LabelsSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for LabelsSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of label names to string values")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(name) = map.next_key_seed(BumpStr(self.bump))? {
            let value = map.next_value_seed(BumpStr(self.bump))?;
            self.out.push((name, value));
        }
        Ok(())
    }
}

/// Deserializes `[1.5, 2, …]` into a reused vector.
pub struct ValuesSeed<'b>(pub &'b mut Vec<f64>);

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(value) = seq.next_element::<f64>()? {
            self.0.push(value);
        }
        Ok(())
    }
}
