import QsentCore

extension JSONWriter {
    /// `{"id":…,"error":{"code":"…","message":"…"}}` (id omitted when nil).
    public static func error(code: String, message: String, idJSON: String?) -> String {
        var w = JSONWriter()
        w.raw("{")
        if let idJSON { w.key("id"); w.raw(idJSON) }
        w.key("error"); w.raw("{")
        w.key("code"); w.string(code)
        w.key("message"); w.string(message)
        w.raw("}}")
        return w.text
    }

    /// `{"id":…,"ok":true}`
    public static func ok(idJSON: String?) -> String {
        var w = JSONWriter()
        w.raw("{")
        if let idJSON { w.key("id"); w.raw(idJSON) }
        w.key("ok"); w.bool(true)
        w.raw("}")
        return w.text
    }

    /// `{"id":…,"results":[{…},…]}`; each result has the same fields as a single answer, minus id.
    public static func results(_ cs: [Classification], idJSON: String?) -> String {
        var w = JSONWriter()
        w.raw("{")
        if let idJSON { w.key("id"); w.raw(idJSON) }
        w.key("results"); w.raw("[")
        for (i, c) in cs.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{")
            w.classificationFields(c, idJSON: nil)
            w.raw("}")
        }
        w.raw("]}")
        return w.text
    }

    /// Appends an array of strings.
    public mutating func stringArray(_ xs: [String]) {
        raw("[")
        for (i, s) in xs.enumerated() {
            if i > 0 { raw(",") }
            string(s)
        }
        raw("]")
    }
}
