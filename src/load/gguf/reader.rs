//! The GGUF container (versions 2 and 3, little-endian): header, metadata, tensor infos and the
//! aligned data section. Every count, length and offset is checked against the file length
//! before it is used, so a malformed file gives a [`GgufError`] rather than a panic or a huge
//! allocation.

use super::dequant::GgmlType;
use crate::error::GgufError;
use std::collections::HashMap;

const MAGIC: [u8; 4] = *b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;
/// Smallest encoding of one metadata entry: key length (8), value type (4), a 1-byte value.
const MIN_KV_BYTES: usize = 8 + 4 + 1;
/// Smallest encoding of one tensor info: name length (8), n_dims (4), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 4 + 8;

/// A metadata value. Arrays hold values of one type; GGUF readers reject nested arrays.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
        }
    }

    /// Any integer type holding a non-negative value: writers differ in which width they use.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(x) => Some(x.into()),
            Value::U16(x) => Some(x.into()),
            Value::U32(x) => Some(x.into()),
            Value::U64(x) => Some(x),
            Value::I8(x) => u64::try_from(x).ok(),
            Value::I16(x) => u64::try_from(x).ok(),
            Value::I32(x) => u64::try_from(x).ok(),
            Value::I64(x) => u64::try_from(x).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(x) => Some(x.into()),
            Value::F64(x) => Some(x),
            _ => self.as_u64().map(|x| x as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where one tensor's data lies in the file, already checked to be inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the innermost (row length); reversed, this is the PyTorch shape.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte range in the file.
    pub start: usize,
    pub end: usize,
}

impl TensorInfo {
    /// The shape in PyTorch order (outermost first).
    pub fn shape(&self) -> Vec<usize> {
        // Each dim is at most the file length (checked when parsed), so it fits a usize.
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    pub fn elements(&self) -> usize {
        self.dims.iter().product::<u64>() as usize
    }
}

#[derive(Debug)]
pub struct GgufFile {
    pub metadata: HashMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
}

impl GgufFile {
    pub fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
        let mut c = Cursor { bytes, pos: 0 };
        let magic: [u8; 4] = c.array("magic")?;
        if magic != MAGIC {
            return Err(GgufError::BadMagic(magic));
        }
        let version = c.u32("version")?;
        match version {
            2 | 3 => {}
            v if (1..=3).contains(&v.swap_bytes()) => return Err(GgufError::BigEndian),
            v => return Err(GgufError::UnsupportedVersion(v)),
        }
        let tensor_count = c.u64("tensor count")?;
        let kv_count = c.u64("metadata count")?;
        c.check_count("metadata entry", kv_count, MIN_KV_BYTES)?;
        c.check_count("tensor", tensor_count, MIN_TENSOR_INFO_BYTES)?;

        let mut metadata = HashMap::with_capacity(kv_count as usize);
        for _ in 0..kv_count {
            let key = c.string("metadata key")?;
            let type_id = c.u32(&format!("type of `{key}`"))?;
            let value = c.value(&key, type_id, true)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(GgufError::DuplicateKey(key));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if a.is_power_of_two() => (*a).into(),
            Some(Value::U32(a)) => return Err(GgufError::BadAlignment((*a).into())),
            Some(other) => return Err(GgufError::WrongKeyType { key: "general.alignment".into(), got: other.type_name(), want: "u32" }),
        };

        struct RawInfo {
            name: String,
            dims: Vec<u64>,
            ggml_type: GgmlType,
            offset: u64,
        }
        let mut raw = Vec::with_capacity(tensor_count as usize);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..tensor_count {
            let name = c.string("tensor name")?;
            let n_dims = c.u32(&format!("dimension count of `{name}`"))?;
            if n_dims > MAX_DIMS {
                return Err(GgufError::TooManyDims { name, n_dims });
            }
            let dims = (0..n_dims).map(|_| c.u64(&format!("dimensions of `{name}`"))).collect::<Result<Vec<_>, _>>()?;
            let type_id = c.u32(&format!("type of `{name}`"))?;
            let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType { name: name.clone(), id: type_id })?;
            let offset = c.u64(&format!("data offset of `{name}`"))?;
            if !seen.insert(name.clone()) {
                return Err(GgufError::DuplicateTensor(name));
            }
            raw.push(RawInfo { name, dims, ggml_type, offset });
        }

        let len = bytes.len();
        let data_start = (c.pos as u64).next_multiple_of(alignment);
        let tensors = raw
            .into_iter()
            .map(|RawInfo { name, dims, ggml_type, offset }| {
                let size = data_size(&name, &dims, ggml_type)?;
                if offset % alignment != 0 {
                    return Err(GgufError::MisalignedTensor { name, offset, alignment });
                }
                let start = data_start.checked_add(offset);
                let end = start.and_then(|s| s.checked_add(size));
                match (start, end) {
                    (Some(start), Some(end)) if end <= len as u64 => Ok(TensorInfo { name, dims, ggml_type, start: start as usize, end: end as usize }),
                    _ => Err(GgufError::TensorPastEnd { name, start: start.unwrap_or(u64::MAX), end: end.unwrap_or(u64::MAX), len }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GgufFile { metadata, tensors })
    }
}

/// Bytes of a tensor's data: whole blocks along the row, rows stored contiguously.
fn data_size(name: &str, dims: &[u64], ggml_type: GgmlType) -> Result<u64, GgufError> {
    let (block, block_bytes) = ggml_type.block_layout();
    let row = dims.first().copied().unwrap_or(1);
    if row % block != 0 {
        return Err(GgufError::PartialBlock { name: name.into(), ggml_type: ggml_type.name(), row, block });
    }
    let overflow = || GgufError::SizeOverflow { name: name.into(), dims: dims.to_vec() };
    let rows = dims.iter().skip(1).try_fold(1u64, |acc, &d| acc.checked_mul(d)).ok_or_else(overflow)?;
    // Elements must stay addressable too (dequantizing allocates one value each).
    let elements = rows.checked_mul(row).filter(|&e| e <= isize::MAX as u64).ok_or_else(overflow)?;
    (elements / block).checked_mul(block_bytes).ok_or_else(overflow)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgufError> {
        let truncated = || GgufError::Truncated { what: what.to_string(), offset: self.pos, need: n, len: self.bytes.len() };
        let n = usize::try_from(n).ok().filter(|&n| n <= self.remaining()).ok_or_else(truncated)?;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len = self.u64(&format!("length of {what}"))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::NotUtf8 { what: what.to_string() })
    }

    /// Refuses a count whose items, at `min_bytes` each, could not fit in what is left.
    fn check_count(&self, what: &'static str, count: u64, min_bytes: usize) -> Result<(), GgufError> {
        if count > (self.remaining() / min_bytes) as u64 {
            return Err(GgufError::AbsurdCount { what, count, len: self.bytes.len() });
        }
        Ok(())
    }

    fn value(&mut self, key: &str, type_id: u32, array_allowed: bool) -> Result<Value, GgufError> {
        let what = || format!("value of `{key}`");
        Ok(match type_id {
            0 => Value::U8(u8::from_le_bytes(self.array(&what())?)),
            1 => Value::I8(i8::from_le_bytes(self.array(&what())?)),
            2 => Value::U16(u16::from_le_bytes(self.array(&what())?)),
            3 => Value::I16(i16::from_le_bytes(self.array(&what())?)),
            4 => Value::U32(u32::from_le_bytes(self.array(&what())?)),
            5 => Value::I32(i32::from_le_bytes(self.array(&what())?)),
            6 => Value::F32(f32::from_le_bytes(self.array(&what())?)),
            7 => Value::Bool(u8::from_le_bytes(self.array(&what())?) != 0),
            8 => Value::String(self.string(&what())?),
            9 if !array_allowed => return Err(GgufError::NestedArray(key.to_string())),
            9 => {
                let item_type = self.u32(&format!("element type of `{key}`"))?;
                let count = self.u64(&format!("length of `{key}`"))?;
                let min_item_bytes = match item_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => return Err(GgufError::NestedArray(key.to_string())),
                    id => return Err(GgufError::UnknownValueType { key: key.to_string(), id }),
                };
                self.check_count("array element", count, min_item_bytes)?;
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(key, item_type, false)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(u64::from_le_bytes(self.array(&what())?)),
            11 => Value::I64(i64::from_le_bytes(self.array(&what())?)),
            12 => Value::F64(f64::from_le_bytes(self.array(&what())?)),
            id => return Err(GgufError::UnknownValueType { key: key.to_string(), id }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_writer::{GgufWriter, Meta};
    use super::*;

    fn one_tensor_file() -> Vec<u8> {
        GgufWriter::default()
            .meta("general.architecture", Meta::Str("qwen2"))
            .meta("list", Meta::I32s(&[1, -2, 3]))
            .f32_tensor("w", &[4, 2], &[0.5; 8])
            .finish()
    }

    fn error_of(bytes: &[u8]) -> String {
        GgufFile::parse(bytes).expect_err("malformed file must be refused").to_string()
    }

    #[test]
    fn reads_metadata_and_tensor_infos() {
        let bytes = one_tensor_file();
        let file = GgufFile::parse(&bytes).unwrap();
        assert_eq!(file.metadata["general.architecture"], Value::String("qwen2".into()));
        assert_eq!(file.metadata["list"], Value::Array(vec![Value::I32(1), Value::I32(-2), Value::I32(3)]));
        let t = &file.tensors[0];
        assert_eq!((t.name.as_str(), t.shape(), t.ggml_type), ("w", vec![2, 4], GgmlType::F32));
        assert_eq!(t.end - t.start, 32);
        assert_eq!(t.start % 32, 0);
        assert_eq!(&bytes[t.start..t.start + 4], &0.5f32.to_le_bytes());
    }

    #[test]
    fn refuses_bad_magic_and_versions() {
        let mut bytes = one_tensor_file();
        bytes[..4].copy_from_slice(b"GGML");
        assert!(error_of(&bytes).contains("bad magic"));
        let mut bytes = one_tensor_file();
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(error_of(&bytes).contains("version 1"));
        bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
        assert!(error_of(&bytes).contains("big-endian"));
    }

    #[test]
    fn refuses_truncation_anywhere() {
        let bytes = one_tensor_file();
        // Every proper prefix fails cleanly, with a one-line error.
        for len in 0..bytes.len() - 32 {
            let err = error_of(&bytes[..len]);
            assert!(err.contains("truncated") || err.contains("past the end") || err.contains("absurd"), "{len}: {err}");
            assert!(!err.contains('\n'));
        }
        assert!(error_of(&bytes[..10]).contains("truncated: tensor count needs 8 bytes at offset 8"));
    }

    #[test]
    fn refuses_absurd_counts() {
        let mut bytes = one_tensor_file();
        bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(error_of(&bytes).contains("tensor count 18446744073709551615 is absurd"));
        let mut bytes = one_tensor_file();
        bytes[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(error_of(&bytes).contains("metadata entry count 1099511627776 is absurd"));
        // The array length of `list` (after its key, type and element type).
        let mut bytes = one_tensor_file();
        let at = find(&bytes, b"list") + 4 + 4 + 4;
        bytes[at..at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
        assert!(error_of(&bytes).contains("array element count"));
    }

    #[test]
    fn refuses_string_length_past_end() {
        let mut bytes = one_tensor_file();
        let at = find(&bytes, b"qwen2") - 8;
        bytes[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        let err = error_of(&bytes);
        assert!(err.contains("truncated: value of `general.architecture` needs 4611686018427387904 bytes"), "{err}");
    }

    #[test]
    fn refuses_bad_tensor_infos() {
        let info = |bytes: &[u8]| find(bytes, b"w\x02\x00\x00\x00") + 1 + 4 + 16;
        let mut bytes = one_tensor_file();
        let at = info(&bytes);
        bytes[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
        assert!(error_of(&bytes).contains("tensor `w` has unknown ggml type id 99"));

        let mut bytes = one_tensor_file();
        bytes[at + 4..at + 12].copy_from_slice(&(1u64 << 20).to_le_bytes());
        assert!(error_of(&bytes).contains("tensor `w` data [") && error_of(&bytes).contains("past the end"));
        bytes[at + 4..at + 12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(error_of(&bytes).contains("not a multiple of the alignment"));

        // Q8_0 rows must be whole 32-element blocks.
        let mut bytes = one_tensor_file();
        bytes[at..at + 4].copy_from_slice(&8u32.to_le_bytes());
        assert!(error_of(&bytes).contains("row length 4 is not a multiple of the Q8_0 block size 32"));

        let mut bytes = one_tensor_file();
        let dims = find(&bytes, b"w\x02\x00\x00\x00") + 5;
        bytes[dims..dims + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(error_of(&bytes).contains("overflows"));
    }

    #[test]
    fn refuses_unknown_value_type_and_nested_arrays() {
        let mut bytes = one_tensor_file();
        let at = find(&bytes, b"list") + 4;
        bytes[at..at + 4].copy_from_slice(&13u32.to_le_bytes());
        assert!(error_of(&bytes).contains("metadata `list` has unknown value type id 13"));
        bytes[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
        bytes[at + 4..at + 8].copy_from_slice(&9u32.to_le_bytes());
        assert!(error_of(&bytes).contains("nested array"));
    }

    fn find(haystack: &[u8], needle: &[u8]) -> usize {
        haystack.windows(needle.len()).position(|w| w == needle).expect("needle present")
    }
}
