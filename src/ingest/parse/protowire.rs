//! The protobuf wire format read in place: a message's fields one at a time, strings and
//! sub-messages as slices of the body. Pure; what the fields mean is the caller's business.
//! Unknown fields are the caller's to skip (the value is already read past), as receivers
//! must; groups (wire types 3 and 4, long deprecated) are skipped whole.

use thiserror::Error;

use crate::varint::Malformed;

/// The largest field number protobuf allows.
const MAX_FIELD: u64 = (1 << 29) - 1;

/// Groups nested deeper than this are refused (prost's recursion limit).
const MAX_GROUP_DEPTH: usize = 100;

/// Why bytes are not a protobuf message; `at` is the byte offset in the message named.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WireError {
    #[error("{message} is cut short at byte {at}")]
    Truncated { message: &'static str, at: usize },
    #[error("{message}: the varint at byte {at} does not fit 64 bits")]
    LongVarint { message: &'static str, at: usize },
    #[error("{message}: wire type {wire_type} at byte {at} is not a protobuf wire type here")]
    BadWireType { message: &'static str, wire_type: u64, at: usize },
    #[error("{message}: field number {field} at byte {at} is outside 1..=536870911")]
    BadFieldNumber { message: &'static str, field: u64, at: usize },
    #[error("{message}: groups nested deeper than {MAX_GROUP_DEPTH} at byte {at}")]
    TooDeep { message: &'static str, at: usize },
    #[error("field {field} of {message} has wire type {found}, where {expected} belongs")]
    WrongType { message: &'static str, field: u32, found: &'static str, expected: &'static str },
    #[error("field {field} of {message} is not valid UTF-8")]
    NotUtf8 { message: &'static str, field: u32 },
    #[error("field {field} of {message}: a packed run of {len} bytes is not whole {width}-byte values")]
    RaggedPacked { message: &'static str, field: u32, len: usize, width: usize },
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "64-bit",
            Value::Bytes(_) => "length-delimited",
            Value::Fixed32(_) => "32-bit",
        }
    }
}

/// Reads the fields of one message, in wire order.
pub struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    message: &'static str,
}

impl<'a> Fields<'a> {
    /// `message` names the message type in errors.
    pub fn new(bytes: &'a [u8], message: &'static str) -> Fields<'a> {
        Fields { bytes, at: 0, message }
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        self.read_field().map_err(|fault| self.named(fault))
    }

    fn read_field(&mut self) -> Result<Option<(u32, Value<'a>)>, Fault> {
        loop {
            if self.at == self.bytes.len() {
                return Ok(None);
            }
            let tag_at = self.at;
            let tag = self.varint()?;
            let field = tag >> 3;
            if field == 0 || field > MAX_FIELD {
                return Err(Fault::FieldNumber(field, tag_at));
            }
            let value = match tag & 7 {
                0 => Value::Varint(self.varint()?),
                1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
                2 => {
                    let len_at = self.at;
                    let len = usize::try_from(self.varint()?).map_err(|_| Fault::Truncated(len_at))?;
                    Value::Bytes(self.take(len)?)
                }
                5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
                3 => {
                    self.skip_group(field as u32)?;
                    continue;
                }
                wire_type => return Err(Fault::WireType(wire_type, tag_at)),
            };
            return Ok(Some((field as u32, value)));
        }
    }

    /// Reads past a group whose start tag (field `field`) was just read, to its end tag.
    #[cold]
    #[inline(never)]
    fn skip_group(&mut self, field: u32) -> Result<(), Fault> {
        let mut open = vec![u64::from(field)];
        while let Some(&innermost) = open.last() {
            let tag_at = self.at;
            if tag_at == self.bytes.len() {
                return Err(Fault::Truncated(tag_at));
            }
            let tag = self.varint()?;
            let inner = tag >> 3;
            if inner == 0 || inner > MAX_FIELD {
                return Err(Fault::FieldNumber(inner, tag_at));
            }
            match tag & 7 {
                0 => drop(self.varint()?),
                1 => drop(self.take(8)?),
                2 => {
                    let len = usize::try_from(self.varint()?).map_err(|_| Fault::Truncated(tag_at))?;
                    self.take(len)?;
                }
                5 => drop(self.take(4)?),
                3 if open.len() < MAX_GROUP_DEPTH => open.push(inner),
                3 => return Err(Fault::TooDeep(tag_at)),
                4 if inner == innermost => drop(open.pop()),
                wire_type => return Err(Fault::WireType(wire_type, tag_at)),
            }
        }
        Ok(())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Fault> {
        let end = self.at.checked_add(len).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or(Fault::Truncated(self.bytes.len()))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64, Fault> {
        let (value, len) = varint(&self.bytes[self.at..]).map_err(|fault| fault.moved(self.at))?;
        self.at += len;
        Ok(value)
    }

    /// A fault as an error naming this message (off the hot path: faults stay small).
    #[cold]
    #[inline(never)]
    fn named(&self, fault: Fault) -> WireError {
        let message = self.message;
        match fault {
            Fault::Truncated(at) => WireError::Truncated { message, at },
            Fault::LongVarint(at) => WireError::LongVarint { message, at },
            Fault::WireType(wire_type, at) => WireError::BadWireType { message, wire_type, at },
            Fault::FieldNumber(field, at) => WireError::BadFieldNumber { message, field, at },
            Fault::TooDeep(at) => WireError::TooDeep { message, at },
        }
    }

    fn wrong(&self, field: u32, value: &Value<'_>, expected: &'static str) -> WireError {
        WireError::WrongType { message: self.message, field, found: value.wire_name(), expected }
    }

    /// A varint field's value (`int32`, `int64`, `uint64`, `bool`, enums).
    pub fn uint(&self, field: u32, value: Value<'a>) -> Result<u64, WireError> {
        match value {
            Value::Varint(v) => Ok(v),
            other => Err(self.wrong(field, &other, "varint")),
        }
    }

    /// A `sint32` field's value (zigzag).
    pub fn sint32(&self, field: u32, value: Value<'a>) -> Result<i32, WireError> {
        Ok(crate::varint::unzigzag32(self.uint(field, value)?))
    }

    /// A `fixed64`, `sfixed64` or `double` field's bits.
    pub fn fixed64(&self, field: u32, value: Value<'a>) -> Result<u64, WireError> {
        match value {
            Value::Fixed64(v) => Ok(v),
            other => Err(self.wrong(field, &other, "64-bit")),
        }
    }

    /// A `double` field's value.
    pub fn double(&self, field: u32, value: Value<'a>) -> Result<f64, WireError> {
        self.fixed64(field, value).map(f64::from_bits)
    }

    /// A `bytes` or sub-message field's bytes.
    pub fn bytes(&self, field: u32, value: Value<'a>) -> Result<&'a [u8], WireError> {
        match value {
            Value::Bytes(b) => Ok(b),
            other => Err(self.wrong(field, &other, "length-delimited")),
        }
    }

    /// A `string` field's text.
    pub fn string(&self, field: u32, value: Value<'a>) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(field, value)?).map_err(|_| WireError::NotUtf8 { message: self.message, field })
    }

    /// A repeated 64-bit field (`fixed64`, `double`), packed or not: each value's bits to `push`.
    pub fn repeated_fixed64(&self, field: u32, value: Value<'a>, mut push: impl FnMut(u64)) -> Result<(), WireError> {
        match value {
            Value::Fixed64(v) => push(v),
            Value::Bytes(run) => {
                if run.len() % 8 != 0 {
                    return Err(WireError::RaggedPacked { message: self.message, field, len: run.len(), width: 8 });
                }
                run.chunks_exact(8).for_each(|c| push(u64::from_le_bytes(c.try_into().expect("8 bytes"))));
            }
            other => return Err(self.wrong(field, &other, "64-bit or packed")),
        }
        Ok(())
    }

    /// A repeated varint field, packed or not: each value to `push`. `value` must be the one
    /// this reader returned last (error offsets are reckoned from where it ended).
    pub fn repeated_varint(&self, field: u32, value: Value<'a>, mut push: impl FnMut(u64)) -> Result<(), WireError> {
        match value {
            Value::Varint(v) => push(v),
            Value::Bytes(mut run) => {
                let mut at = self.at - run.len();
                while !run.is_empty() {
                    let (v, len) = varint(run).map_err(|fault| self.named(fault.moved(at)))?;
                    push(v);
                    (at, run) = (at + len, &run[len..]);
                }
            }
            other => return Err(self.wrong(field, &other, "varint or packed")),
        }
        Ok(())
    }
}

/// What went wrong and where, before the message is named: small, so the hot path's
/// results stay small.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Truncated(usize),
    LongVarint(usize),
    WireType(u64, usize),
    FieldNumber(u64, usize),
    TooDeep(usize),
}

impl Fault {
    /// The same fault with its offset moved by `base` bytes.
    fn moved(self, base: usize) -> Fault {
        match self {
            Fault::Truncated(at) => Fault::Truncated(base + at),
            Fault::LongVarint(at) => Fault::LongVarint(base + at),
            other => other,
        }
    }
}

/// A varint at the start of `bytes`: its value and length.
#[inline]
fn varint(bytes: &[u8]) -> Result<(u64, usize), Fault> {
    crate::varint::decode(bytes).map_err(|malformed| match malformed {
        Malformed::Truncated => Fault::Truncated(bytes.len()),
        Malformed::TooLong => Fault::LongVarint(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_what_prost_wrote() {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Sample {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(sint32, tag = "2")]
            scale: i32,
            #[prost(fixed64, repeated, tag = "3")]
            packed: Vec<u64>,
            #[prost(uint64, repeated, tag = "4")]
            varints: Vec<u64>,
            #[prost(double, tag = "5")]
            value: f64,
            #[prost(fixed32, tag = "6")]
            unknown: u32,
        }
        let sample = Sample {
            name: "ключ".into(),
            scale: -3,
            packed: vec![1, u64::MAX],
            varints: vec![0, 300, u64::MAX],
            value: 0.25,
            unknown: 7,
        };
        let bytes = prost::Message::encode_to_vec(&sample);
        let mut fields = Fields::new(&bytes, "Sample");
        let (mut packed, mut varints) = (Vec::new(), Vec::new());
        let mut seen = Vec::new();
        while let Some((field, value)) = fields.next_field().unwrap() {
            seen.push(field);
            match field {
                1 => assert_eq!(fields.string(field, value).unwrap(), "ключ"),
                2 => assert_eq!(fields.sint32(field, value).unwrap(), -3),
                3 => fields.repeated_fixed64(field, value, |v| packed.push(v)).unwrap(),
                4 => fields.repeated_varint(field, value, |v| varints.push(v)).unwrap(),
                5 => assert_eq!(fields.double(field, value).unwrap(), 0.25),
                _ => assert_eq!(value, Value::Fixed32(7)),
            }
        }
        assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
        assert_eq!((packed, varints), (sample.packed, sample.varints));
    }

    #[test]
    fn broken_bytes_say_what_and_where() {
        // Field 1, length-delimited, length 5, but only 2 bytes follow.
        let mut fields = Fields::new(&[0x0a, 0x05, b'a', b'b'], "M");
        let truncated = fields.next_field().unwrap_err();
        assert_eq!(truncated, WireError::Truncated { message: "M", at: 4 });
        assert_eq!(truncated.to_string(), "M is cut short at byte 4");
        let mut fields = Fields::new(&[0xff; 11], "M");
        assert_eq!(fields.next_field(), Err(WireError::LongVarint { message: "M", at: 0 }));
        // Ten bytes, but the tenth has more than bit 63 in it.
        let mut overflow = vec![0x08];
        overflow.extend([0xff; 9]);
        overflow.push(0x02);
        assert_eq!(Fields::new(&overflow, "M").next_field(), Err(WireError::LongVarint { message: "M", at: 1 }));
        // Field number 0.
        let zero = Fields::new(&[0x00, 0x01], "M").next_field();
        assert_eq!(zero, Err(WireError::BadFieldNumber { message: "M", field: 0, at: 0 }));
        // A string field sent as a varint.
        let mut fields = Fields::new(&[0x08, 0x01], "M");
        let (field, value) = fields.next_field().unwrap().unwrap();
        let err = fields.string(field, value).unwrap_err();
        assert_eq!(err.to_string(), "field 1 of M has wire type varint, where length-delimited belongs");
        // Invalid UTF-8 and a packed run that is not whole 8-byte values.
        let mut fields = Fields::new(&[0x0a, 0x01, 0xff, 0x12, 0x03, 1, 2, 3], "M");
        let (field, value) = fields.next_field().unwrap().unwrap();
        assert_eq!(fields.string(field, value), Err(WireError::NotUtf8 { message: "M", field: 1 }));
        let (field, value) = fields.next_field().unwrap().unwrap();
        let ragged = fields.repeated_fixed64(field, value, |_| ()).unwrap_err();
        assert_eq!(ragged, WireError::RaggedPacked { message: "M", field: 2, len: 3, width: 8 });
        // A packed varint run cut short inside its last value.
        let mut fields = Fields::new(&[0x22, 0x02, 0x01, 0x80], "M");
        let (field, value) = fields.next_field().unwrap().unwrap();
        assert_eq!(fields.repeated_varint(field, value, |_| ()), Err(WireError::Truncated { message: "M", at: 4 }));
    }

    #[test]
    fn groups_are_skipped_whole_and_must_close() {
        // Group 1 holding field 2 and a nested group 4, then field 3.
        let mut fields = Fields::new(&[0x0b, 0x10, 0x05, 0x23, 0x24, 0x0c, 0x18, 0x07], "M");
        assert_eq!(fields.next_field(), Ok(Some((3, Value::Varint(7)))));
        assert_eq!(fields.next_field(), Ok(None));
        let unmatched = Fields::new(&[0x0c], "M").next_field();
        assert_eq!(unmatched, Err(WireError::BadWireType { message: "M", wire_type: 4, at: 0 }));
        let crossed = Fields::new(&[0x0b, 0x14], "M").next_field();
        assert_eq!(crossed, Err(WireError::BadWireType { message: "M", wire_type: 4, at: 1 }));
        assert_eq!(Fields::new(&[0x0b], "M").next_field(), Err(WireError::Truncated { message: "M", at: 1 }));
        let deep = vec![0x0b; MAX_GROUP_DEPTH + 1];
        assert_eq!(Fields::new(&deep, "M").next_field(), Err(WireError::TooDeep { message: "M", at: MAX_GROUP_DEPTH }));
    }
}
