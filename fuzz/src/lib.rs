//! Helpers shared by the fuzz targets: every target takes a few leading bytes of the input as
//! its "control" bytes (limits, keys, where to cut the rest) and the rest as the data.

/// Split the input into `N` control bytes (zeros where the input is shorter) and the data.
pub fn control<const N: usize>(input: &[u8]) -> ([u8; N], &[u8]) {
    let mut ctrl = [0u8; N];
    let n = input.len().min(N);
    ctrl[..n].copy_from_slice(&input[..n]);
    (ctrl, &input[n..])
}

/// The size of the next piece for one seed byte: the top two bits pick a scale, so that a
/// fuzzer reaches one-byte trickles, short reads, long reads and "the rest at once" alike.
fn piece_size(seed: u8, rest: usize) -> usize {
    let low = usize::from(seed & 0x3f);
    match seed >> 6 {
        0 => 1 + (low & 3),
        1 => 1 + low,
        2 => 1 + low * 61,
        _ => rest.max(1),
    }
}

/// Cut `data` into consecutive pieces whose sizes come from `seeds`, taken in turn. Empty
/// seeds give one piece. The pieces always cover `data` exactly, in order.
pub fn pieces<'a>(data: &'a [u8], seeds: &[u8]) -> Vec<&'a [u8]> {
    if seeds.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut turn = 0;
    while !rest.is_empty() {
        let size = piece_size(seeds[turn % seeds.len()], rest.len()).min(rest.len());
        turn += 1;
        let (piece, after) = rest.split_at(size);
        out.push(piece);
        rest = after;
    }
    out
}
