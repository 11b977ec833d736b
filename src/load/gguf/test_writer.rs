//! Builds small GGUF files in memory for tests.

/// A metadata value as written: GGUF value type id and its little-endian encoding.
pub enum Meta<'a> {
    U32(u32),
    F32(f32),
    Str(&'a str),
    Strs(&'a [&'a str]),
    I32s(&'a [i32]),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Meta<'_> {
    fn type_id(&self) -> u32 {
        match self {
            Meta::U32(_) => 4,
            Meta::F32(_) => 6,
            Meta::Str(_) => 8,
            Meta::Strs(_) | Meta::I32s(_) => 9,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Meta::U32(x) => out.extend(x.to_le_bytes()),
            Meta::F32(x) => out.extend(x.to_le_bytes()),
            Meta::Str(s) => put_str(out, s),
            Meta::Strs(items) => {
                out.extend(8u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|s| put_str(out, s));
            }
            Meta::I32s(items) => {
                out.extend(5u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|x| out.extend(x.to_le_bytes()));
            }
        }
    }
}

#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<u8>,
    metadata_count: u64,
    infos: Vec<u8>,
    tensor_count: u64,
    data: Vec<u8>,
}

impl GgufWriter {
    pub fn meta(mut self, key: &str, value: Meta) -> Self {
        put_str(&mut self.metadata, key);
        self.metadata.extend(value.type_id().to_le_bytes());
        value.encode(&mut self.metadata);
        self.metadata_count += 1;
        self
    }

    /// Adds a tensor; `dims` in ggml order (row length first).
    pub fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, data: &[u8]) -> Self {
        put_str(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        dims.iter().for_each(|d| self.infos.extend(d.to_le_bytes()));
        self.infos.extend(type_id.to_le_bytes());
        self.infos.extend((self.data.len() as u64).to_le_bytes());
        self.data.extend(data);
        self.data.resize(self.data.len().next_multiple_of(32), 0);
        self.tensor_count += 1;
        self
    }

    /// An f32 tensor, or with `q8_0` its values quantized to Q8_0 blocks (dims[0] a multiple of 32).
    pub fn matrix(self, name: &str, dims: &[u64], values: &[f32], q8_0: bool) -> Self {
        if q8_0 {
            return self.tensor(name, dims, 8, &crate::quant::quantize(crate::ir::DType::Q8_0, values));
        }
        self.f32_tensor(name, dims, values)
    }

    pub fn f32_tensor(self, name: &str, dims: &[u64], values: &[f32]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, 0, &bytes)
    }

    pub fn finish(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.tensor_count.to_le_bytes());
        out.extend(self.metadata_count.to_le_bytes());
        out.extend(self.metadata);
        out.extend(self.infos);
        out.resize(out.len().next_multiple_of(32), 0);
        out.extend(self.data);
        out
    }
}
