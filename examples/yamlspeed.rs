fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let t = std::time::Instant::now();
    let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    println!("json value default: {:?} {}", t.elapsed(), v.is_object());
    let t = std::time::Instant::now();
    let v: serde_json::Value =
        serde_saphyr::from_str_with_options(&text, serde_saphyr::options! { budget: None })
            .unwrap();
    println!("json value no budget: {:?} {}", t.elapsed(), v.is_object());
    let block = text
        .replace(
            "    run: { program: echo, args: [",
            "    run:\n      program: echo\n      args: [",
        )
        .replace("] }\n", "]\n");
    let t = std::time::Instant::now();
    let v: serde_json::Value = serde_saphyr::from_str(&block).unwrap();
    println!("json value block: {:?} {}", t.elapsed(), v.is_object());
    let t = std::time::Instant::now();
    let v: serde_json::Value =
        serde_saphyr::from_str(&text[..text.len() / 2].rsplit_once("\n  - id").unwrap().0).unwrap();
    println!("half: {:?} {}", t.elapsed(), v.is_object());
}
