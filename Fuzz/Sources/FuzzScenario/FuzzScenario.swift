import BottleFitLoadgen

/// One YAML text as a scenario (YAML parse, duplicate keys, every field) and as a load schedule.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScenario(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    _ = try? LoadgenScenario.parse(text, file: "fuzz.yaml")
    _ = try? LoadShape.parseSchedule(text, path: "fuzz.schedule")
    return 0
}
