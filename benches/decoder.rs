//! Throughput of the input path's pure parts: the telnet decoder, the sanitizer and the
//! command parser. Reported in bytes per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use natter::codec::{Decoder, TelnetEvent};
use natter::{command, sanitize};

fn chat_input() -> Vec<u8> {
    let mut input = Vec::new();
    for i in 0..1000 {
        input.extend_from_slice(
            format!("hello everyone, this is line {i} of the chat\r\n").as_bytes(),
        );
        if i % 10 == 0 {
            input.extend_from_slice("@bob héllo 本 \x1b[31mred\x1b[0m\r\n".as_bytes());
            input.extend_from_slice(b"\xff\xfd\x06/ls\r\n");
        }
    }
    input
}

fn decode_all(input: &[u8]) -> usize {
    let mut decoder = Decoder::new(512, true);
    let mut lines = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let (used, event) = decoder.decode(rest);
        if let Some(TelnetEvent::Line(raw)) = event {
            let text = sanitize::clean(raw);
            if !text.is_empty() {
                std::hint::black_box(command::parse(&text));
                lines += 1;
            }
        }
        rest = &rest[used..];
    }
    lines
}

fn benches(c: &mut Criterion) {
    let input = chat_input();
    let mut group = c.benchmark_group("input");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("decode+sanitize+parse", |b| b.iter(|| decode_all(&input)));
    group.bench_function("decode only", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(512, true);
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (used, _) = decoder.decode(rest);
                rest = &rest[used..];
            }
        })
    });
    let lines: Vec<&str> = ["hello world", "@bob hi there", "/ls", "/unknown x"].to_vec();
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("command parse", |b| {
        b.iter(|| {
            for line in &lines {
                std::hint::black_box(command::parse(line));
            }
        })
    });
    group.finish();
}

criterion_group!(input, benches);
criterion_main!(input);
