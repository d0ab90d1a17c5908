//! A minimal MaxMind DB writer (format 2.0) for tests: networks mapped to City-like location records.
//!
//! Layout (<https://maxmind.github.io/MaxMind-DB/>): a binary search tree of `node_count`
//! nodes with two 32-bit records each (record < node_count: next node; == node_count: no
//! data; > node_count: data at `record - node_count - 16`), 16 zero bytes, the data section,
//! then `\xAB\xCD\xEFMaxMind.com` and the metadata map. IPv6 tree; IPv4 networks live
//! under `::/96`, where readers look IPv4 addresses up.

use std::net::IpAddr;

/// A value of the MaxMind DB data section.
pub enum Value {
    Str(String),
    Double(f64),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (first, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    if kind <= 7 {
        out.push(kind << 5 | first);
    } else {
        out.push(first);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
}

fn uint(out: &mut Vec<u8>, kind: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, kind, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

impl Value {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => {
                control(out, 2, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Double(d) => {
                control(out, 3, 8);
                out.extend_from_slice(&d.to_be_bytes());
            }
            Value::U16(v) => uint(out, 5, u64::from(*v)),
            Value::U32(v) => uint(out, 6, u64::from(*v)),
            Value::U64(v) => uint(out, 9, *v),
            Value::Map(pairs) => {
                control(out, 7, pairs.len());
                for (k, v) in pairs {
                    Value::Str(k.clone()).encode(out);
                    v.encode(out);
                }
            }
            Value::Array(items) => {
                control(out, 11, items.len());
                for v in items {
                    v.encode(out);
                }
            }
        }
    }
}

/// `{"location": {"latitude": .., "longitude": ..}}` as in GeoLite2-City.
pub fn city(latitude: f64, longitude: f64) -> Value {
    Value::Map(vec![(
        "location".to_owned(),
        Value::Map(vec![
            ("accuracy_radius".to_owned(), Value::U16(100)),
            ("latitude".to_owned(), Value::Double(latitude)),
            ("longitude".to_owned(), Value::Double(longitude)),
        ]),
    )])
}

/// A record without location (as GeoLite2 has for some networks).
pub fn country_only(iso_code: &str) -> Value {
    Value::Map(vec![(
        "country".to_owned(),
        Value::Map(vec![(
            "iso_code".to_owned(),
            Value::Str(iso_code.to_owned()),
        )]),
    )])
}

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds a database from `(network, prefix length, record)`; networks must not nest.
pub fn build(networks: &[(IpAddr, u8, Value)]) -> Vec<u8> {
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    let mut data = Vec::new();
    for (ip, len, value) in networks {
        let (bits, len) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(*v4)), 96 + usize::from(*len)),
            IpAddr::V6(v6) => (u128::from(*v6), usize::from(*len)),
        };
        let offset = data.len();
        value.encode(&mut data);
        let mut node = 0;
        for depth in 0..len {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth + 1 == len {
                nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match nodes[node][bit] {
                Record::Node(next) => next,
                Record::Empty => {
                    nodes.push([Record::Empty; 2]);
                    let next = nodes.len() - 1;
                    nodes[node][bit] = Record::Node(next);
                    next
                }
                Record::Data(_) => panic!("nested networks are not supported"),
            };
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let v = match *record {
                Record::Empty => count,
                Record::Node(n) => n,
                Record::Data(offset) => count + 16 + offset,
            };
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    let metadata = Value::Map(vec![
        ("binary_format_major_version".to_owned(), Value::U16(2)),
        ("binary_format_minor_version".to_owned(), Value::U16(0)),
        ("build_epoch".to_owned(), Value::U64(1_700_000_000)),
        (
            "database_type".to_owned(),
            Value::Str("Iris-Test-City".to_owned()),
        ),
        (
            "description".to_owned(),
            Value::Map(vec![("en".to_owned(), Value::Str("test".to_owned()))]),
        ),
        ("ip_version".to_owned(), Value::U16(6)),
        (
            "languages".to_owned(),
            Value::Array(vec![Value::Str("en".to_owned())]),
        ),
        ("node_count".to_owned(), Value::U32(count as u32)),
        ("record_size".to_owned(), Value::U16(32)),
    ]);
    metadata.encode(&mut out);
    out
}
