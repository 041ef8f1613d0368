import BottleFitMetrics
import Testing

@Suite struct ExpositionTests {
    @Test func rendersTheTextFormatByteForByte() {
        var h = BucketHistogram(upperBounds: [0.1, 1])
        h.record(0.05)
        h.record(0.1)
        h.record(3)
        let text = PrometheusText.render([
            .counter("x_frames_total", "Frames seen.", [([("reason", "busy")], 2), ([("reason", "expired")], 0)]),
            .gauge("x_depth", "Depth\\now\nnext.", 1.5, labels: [("cam", "a\"b\\c\nd")]),
            .histogram("x_wait_seconds", "Waits.", [([], h)]),
        ])
        #expect(text == """
            # HELP x_frames_total Frames seen.
            # TYPE x_frames_total counter
            x_frames_total{reason="busy"} 2
            x_frames_total{reason="expired"} 0
            # HELP x_depth Depth\\\\now\\nnext.
            # TYPE x_depth gauge
            x_depth{cam="a\\"b\\\\c\\nd"} 1.5
            # HELP x_wait_seconds Waits.
            # TYPE x_wait_seconds histogram
            x_wait_seconds_bucket{le="0.1"} 2
            x_wait_seconds_bucket{le="1"} 2
            x_wait_seconds_bucket{le="+Inf"} 3
            x_wait_seconds_sum 3.15
            x_wait_seconds_count 3

            """)
    }

    @Test func valuesAreWrittenAsTheFormatReadsThem() {
        #expect(PrometheusText.format(42) == "42")
        #expect(PrometheusText.format(-3) == "-3")
        #expect(PrometheusText.format(0.25) == "0.25")
        #expect(PrometheusText.format(.infinity) == "+Inf")
        #expect(PrometheusText.format(-.infinity) == "-Inf")
        #expect(PrometheusText.format(.nan) == "NaN")
        #expect(ExpositionParser.parseValue(PrometheusText.format(1e-7)) == 1e-7)
        #expect(ExpositionParser.parseValue(PrometheusText.format(1e300)) == 1e300)
    }

    @Test func whatIsRenderedParsesBack() throws {
        var h = BucketHistogram()
        for v in [0.0005, 0.003, 0.2, 0.2, 7, 42] { h.record(v) }
        let families: [MetricFamily] = [
            .counter("a_total", "A.", 7, labels: [("camera", "cam \"1\"")]),
            .gauge("b", "B.", [([("s", "x")], 1), ([("s", "y")], 0)]),
            .histogram("c_seconds", "C.", [([("path", "edge")], h), ([("path", "local")], BucketHistogram())]),
        ]
        let parsed = try ExpositionParser.parse(PrometheusText.render(families))
        #expect(parsed.map(\.name) == ["a_total", "b", "c_seconds"])
        #expect(parsed.map(\.type) == ["counter", "gauge", "histogram"])
        #expect(parsed[0].samples == [.init(name: "a_total", labels: ["camera": "cam \"1\""], value: 7)])
        let inf = parsed[2].samples.first { $0.labels == ["path": "edge", "le": "+Inf"] }
        #expect(inf?.value == 6)
        #expect(parsed[2].samples.first { $0.name == "c_seconds_count" && $0.labels == ["path": "edge"] }?.value == 6)
    }

    @Test func histogramBucketsUseLessOrEqual() {
        var h = BucketHistogram(upperBounds: [1, 2])
        for v in [1.0, 1.0000001, 2, 2.5, -1, .nan] { h.record(v) }
        #expect(h.bucketCounts == [3, 2])  // -1 and NaN count as 0; 1.0000001 and 2 go to le=2
        #expect(h.count == 6)
        var other = BucketHistogram(upperBounds: [1, 2])
        other.record(0.5)
        h.merge(other)
        #expect(h.bucketCounts == [4, 2] && h.count == 7)
    }

    @Test(arguments: [
        ("x 1", "no TYPE"),
        ("# TYPE x counter\nx -1\n", "negative"),
        ("# TYPE x_total counter\n# TYPE x_total counter\n", "second TYPE"),
        ("# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n", "appears again"),
        ("# TYPE x gauge\nx 1\nx 2\n", "twice"),
        ("# TYPE x gauge\nx{a=\"1\\q\"} 1\n", "bad escape"),
        ("# TYPE x gauge\nx{a=\"1} 1\n", "unterminated"),
        ("# TYPE x gauge\nx one\n", "invalid value"),
        ("# TYPE x gauge\nx 1", "line feed"),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", "cumulative"),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", "+Inf"),
        ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 2\n", "_count"),
        ("# TYPE x blob\n", "unknown type"),
        ("# TYPE x gauge\nx 1\n# TYPE x gauge\n", "TYPE"),
    ])
    func theCheckerRefusesBrokenExpositions(text: String, expected: String) {
        do {
            _ = try ExpositionParser.parse(text.hasSuffix("\n") || expected == "line feed" ? text : text + "\n")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.reason.contains(expected), "\(error) for \(text)")
        }
    }
}
