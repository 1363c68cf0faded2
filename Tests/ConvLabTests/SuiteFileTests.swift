import ConvLab
import Foundation
import Testing

@Suite struct SuiteFileTests {
    @Test func parsesTheSharedFormatWithOptionalDilation() throws {
        let rows = try SuiteFile.parse("""
            name,N,C,H,W,K,R,S,stride,pad,groups,dilation
            a,1,64,56,56,64,3,3,1,1,1,
            b,2,3,227,227,96,11,11,4,0,1,1
            # comments and blank lines are skipped

            c,1,32,112,112,32,3,3,2x1,same,32,2
            """)
        #expect(rows.map(\.name) == ["a", "b", "c"])
        #expect(rows[0].descriptor.outputHeight == 56)
        #expect(rows[1].descriptor.batch == 2 && rows[1].descriptor.outputWidth == 55)
        #expect(rows[2].descriptor.strideHeight == 2 && rows[2].descriptor.strideWidth == 1)
        #expect(rows[2].descriptor.dilationHeight == 2 && rows[2].descriptor.isDepthwise)
    }

    @Test func readsTheRepositorySuiteWhenPresent() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../../shared/bench/suite.csv").standardized.path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let rows = try SuiteFile.read(contentsOf: path)
        #expect(rows.count >= 20)
    }

    @Test(arguments: [
        "",
        "name,N,C,H,W,K,R,S,stride,pad\nx,1,1,1,1,1,1,1,1,0",                      // missing groups column
        "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,1,8,8,1,3,3,1,0",                // too few fields
        "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,one,8,8,1,3,3,1,0,1",            // not a number
        "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,4,8,8,4,3,3,1,0,3",              // groups do not divide
        "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,4,2,2,4,5,5,1,0,1",              // kernel larger than input
        "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,4,8,8,4,3,3,1,lots,1",           // bad padding
    ])
    func badSuitesGiveAnErrorNamingTheProblem(text: String) {
        #expect(throws: ConvLabError.self) { try SuiteFile.parse(text) }
    }

    @Test func shapeSyntax() throws {
        #expect(try ShapeSyntax.pair("7x1", name: "kernel") == (7, 1))
        #expect(try ShapeSyntax.pair("5", name: "kernel") == (5, 5))
        #expect(try ShapeSyntax.pair("2,3", name: "stride") == (2, 3))
        #expect(throws: ConvLabError.self) { try ShapeSyntax.pair("7x", name: "kernel") }
        #expect(throws: ConvLabError.self) { try ShapeSyntax.pair("1x2x3", name: "kernel") }
        #expect(try ShapeSyntax.padding("1,2,3,4") == .explicit(Padding(top: 1, bottom: 2, left: 3, right: 4)))
        #expect(try ShapeSyntax.padding("2,1") == .explicit(Padding(height: 2, width: 1)))
        #expect(try ShapeSyntax.padding("same") == .same)
        #expect(throws: ConvLabError.self) { try ShapeSyntax.padding("1,2,3") }
    }
}

@Suite struct CSVReaderTests {
    @Test func quotedFieldsRoundTripThroughTheWriter() {
        let fields = ["plain", "with,comma", "with \"quote\"", "two\nlines", ""]
        let line = fields.map(csvEscape).joined(separator: ",")
        #expect(CSVReader.records("a,b,c,d,e\n" + line + "\n") == [["a", "b", "c", "d", "e"], fields])
    }

    @Test func rowsAreKeyedByTheHeader() {
        let rows = CSVReader.rows("x,y\n1,2\n3,\"4,5\"")
        #expect(rows.count == 2 && rows[1]["y"] == "4,5")
    }
}
