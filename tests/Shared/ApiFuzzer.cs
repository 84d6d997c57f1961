using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace IsoTest.TestSupport;

/// <summary>What a fuzz run sent and what it found; <see cref="Failures"/> empty means the server held.</summary>
public sealed class FuzzReport
{
    public int Inputs { get; set; }

    public int Batches { get; set; }

    /// <summary>Inputs by how they were sent (normal, chunked, truncated-closed, ...).</summary>
    public SortedDictionary<string, int> ByMode { get; } = new(StringComparer.Ordinal);

    /// <summary>Answers by status class (2xx, 4xx, ...; "none" when the server closed without an answer).</summary>
    public SortedDictionary<string, int> ByStatus { get; } = new(StringComparer.Ordinal);

    /// <summary>Requests to routes that may hold a response open (wait, follow, events, stop) that the client gave up on.</summary>
    public int HeldOpen { get; set; }

    public List<string> Failures { get; } = [];

    public override string ToString()
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"{Inputs:N0} inputs in {Batches} batches; modes: ");
        s.AppendJoin(", ", ByMode.Select(p => $"{p.Key} {p.Value}"));
        s.Append("; answers: ");
        s.AppendJoin(", ", ByStatus.Select(p => $"{p.Key} {p.Value}"));
        s.Append(CultureInfo.InvariantCulture, $"; held open until the client gave up: {HeldOpen}; failures: {Failures.Count}");
        return s.ToString();
    }
}

/// <summary>
/// A seeded fuzzer of IsoTest's Docker API server, over raw HTTP/1.1 on its unix socket so that it can send what
/// no HTTP client library would: every route with mutated JSON (wrong types, huge and deep values, truncated), bodies
/// cut short (then closed, or held open), heads cut short, huge headers, chunked bodies, random methods and paths,
/// and hijacked exec/attach streams whose client vanishes. Every request has a client deadline: a server that
/// never answers a request it has in full is a failure, as is a 5xx without Docker's <c>{"message"}</c> body, a
/// <c>/_ping</c> that goes unanswered after a batch, or (at the end) a container, network or volume the server
/// lists that the client was never told was created, cannot inspect, or cannot remove.
/// </summary>
public sealed class ApiFuzzer(string socketPath, int seed)
{
    /// <summary>A request the server has in full must be answered (at least its head) within this.</summary>
    public TimeSpan AnswerDeadline { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How long the client reads a stream that may legitimately stay open (follow, wait, events, hijack) before it vanishes.</summary>
    public TimeSpan StreamPatience { get; init; } = TimeSpan.FromMilliseconds(700);

    public int BatchSize { get; init; } = 50;

    /// <summary>Requests in flight at once.</summary>
    public int InFlight { get; init; } = 4;

    private readonly Random _random = new(seed);
    private readonly List<string> _containers = [];
    private readonly List<string> _networks = [];
    private readonly List<string> _volumes = [];
    private readonly List<string> _execs = [];
    private readonly HashSet<string> _reportedContainers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _reportedNetworks = new(StringComparer.Ordinal);

    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO", "get", ""];

    private static readonly string[] Junk =
    [
        "", " ", "%", "%zz", "%00", "..", "../..", "a/b", "/", "?", "#", "&", "=", "\u00e9", "x y", "null", "0", "-1", "9999999999999999999",
        "isotest/host", "sha256:" + new string('a', 64), "bridge", "host", "none", new string('z', 300), "../../../../etc/passwd",
    ];

    private static readonly string[][] Commands =
    [
        ["sleep", "3600"], ["true"], ["false"], ["sh", "-c", "echo out; echo err >&2; exit 3"], ["sh", "-c", "echo hi; sleep 2"], ["/no/such/binary"], ["/etc/passwd"], [""],
    ];

    private static readonly string[][] ExecCommands = [["true"], ["echo", "x"], ["sh", "-c", "exit 7"], ["/nope"], ["sleep", "1"], ["cat", "/etc/hostname"], [""]];

    /// <summary>Runs <paramref name="inputs"/> inputs in batches, checking the server after each; then the resources it left.</summary>
    public async Task<FuzzReport> RunAsync(int inputs, Func<bool> serverAlive, TextWriter? progress = null, CancellationToken cancellationToken = default)
    {
        var report = new FuzzReport();
        await SeedResourcesAsync().ConfigureAwait(false);
        while (report.Inputs < inputs && report.Failures.Count == 0)
        {
            var batch = Math.Min(BatchSize, inputs - report.Inputs);
            for (var sent = 0; sent < batch; sent += InFlight)
            {
                // A few in flight at once, as parallel test processes would be; generated (and cut) in order, so a seed replays.
                var wave = Enumerable.Range(0, Math.Min(InFlight, batch - sent)).Select(_ => Generate()).Select(i => (i, Request(i.Method, i.Path, i.Body, i.Mode))).ToList();
                await Task.WhenAll(wave.Select(w => SendOneAsync(w.i, w.Item2, report))).ConfigureAwait(false);
            }

            report.Inputs += batch;
            report.Batches++;
            if (!serverAlive())
            {
                report.Failures.Add($"the server process exited during batch {report.Batches}");
                break;
            }

            var ping = await SendAsync(Request("GET", "/_ping", null, "normal"), AnswerDeadline, mayBlock: false).ConfigureAwait(false);
            if (ping.Status != 200 || !ping.Body.EndsWith("OK", StringComparison.Ordinal))
            {
                report.Failures.Add($"GET /_ping after batch {report.Batches} answered {ping.Describe()}");
            }

            if (progress is not null && report.Batches % 20 == 0)
            {
                await progress.WriteLineAsync($"fuzz: {report.Inputs:N0} inputs, {report.Failures.Count} failures").ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
        }

        await CheckResourcesAsync(report).ConfigureAwait(false);
        return report;
    }

    /// <summary>A running and an exited container, a network and a volume, so that id routes reach real resources.</summary>
    private async Task SeedResourcesAsync()
    {
        foreach (var command in new[] { Commands[0], Commands[1] })
        {
            var body = JsonSerializer.Serialize(new { Image = "isotest/host", Cmd = command, HostConfig = new { NetworkMode = "none" } });
            var created = await SendAsync(Request("POST", "/containers/create", Encoding.UTF8.GetBytes(body), "normal"), AnswerDeadline, false).ConfigureAwait(false);
            Remember(created, "/containers/create");
            if (created.Json?["Id"]?.GetValue<string>() is { } id)
            {
                await SendAsync(Request("POST", $"/containers/{id}/start", null, "normal"), AnswerDeadline, false).ConfigureAwait(false);
            }
        }

        Remember(await SendAsync(Request("POST", "/networks/create", """{"Name":"fuzz-net"}"""u8.ToArray(), "normal"), AnswerDeadline, false).ConfigureAwait(false), "/networks/create");
        Remember(await SendAsync(Request("POST", "/volumes/create", """{"Name":"fuzz-vol"}"""u8.ToArray(), "normal"), AnswerDeadline, false).ConfigureAwait(false), "/volumes/create");
    }

    private sealed record Input(string Method, string Path, byte[]? Body, string Mode, bool MayBlock, string Route);

    private async Task SendOneAsync(Input input, WireRequest request, FuzzReport report)
    {
        var answer = await SendAsync(request, AnswerDeadline, input.MayBlock || input.Mode is "hijack-vanish" or "truncated-open").ConfigureAwait(false);
        lock (report)
        {
            report.ByMode[input.Mode] = report.ByMode.GetValueOrDefault(input.Mode) + 1;
            var status = answer.Status is { } s ? $"{s / 100}xx" : "none";
            report.ByStatus[status] = report.ByStatus.GetValueOrDefault(status) + 1;
            if (answer.GaveUp)
            {
                report.HeldOpen++;
            }

            if (answer.Hung)
            {
                report.Failures.Add($"no answer in {AnswerDeadline.TotalSeconds:0} s to {input.Method} {Shorten(input.Path)} ({input.Mode}, body {Shorten(input.Body)})");
            }
            else if (answer.Status >= 500 && !answer.HasMessage && input.Method != "HEAD")
            {
                report.Failures.Add($"{input.Method} {Shorten(input.Path)} ({input.Mode}) answered {answer.Describe()} without a {{\"message\"}} body; body {Shorten(input.Body)}");
            }
        }

        if (answer.Status >= 500 && input.Method == "HEAD")
        {
            // A HEAD answer has no body by HTTP: the same request as GET must say what went wrong.
            var get = await SendAsync(Request("GET", input.Path, null, "normal"), AnswerDeadline, input.MayBlock).ConfigureAwait(false);
            if (get.Status >= 500 && !get.HasMessage)
            {
                lock (report)
                {
                    report.Failures.Add($"HEAD {Shorten(input.Path)} answered {answer.Status} and GET {get.Describe()} without a {{\"message\"}} body");
                }
            }
        }

        Remember(answer, input.Route);
    }

    /// <summary>Ids the server reported: fuzzed requests refer to them, and the final check holds the server to them.</summary>
    private void Remember(Answer answer, string route)
    {
        if (answer.Status != 201 || answer.Json is not JsonObject json)
        {
            return;
        }

        lock (_containers)
        {
            if (route == "/containers/create" && json["Id"]?.GetValue<string>() is { } container)
            {
                _containers.Add(container);
                _reportedContainers.Add(container);
            }
            else if (route == "/networks/create" && json["Id"]?.GetValue<string>() is { } network)
            {
                _networks.Add(network);
                _reportedNetworks.Add(network);
            }
            else if (route == "/volumes/create" && json["Name"]?.GetValue<string>() is { } volume)
            {
                _volumes.Add(volume);
            }
            else if (route == "/containers/{id}/exec" && json["Id"]?.GetValue<string>() is { } exec)
            {
                _execs.Add(exec);
            }
        }
    }

    private Input Generate()
    {
        var r = _random;
        string Pick(List<string> known)
        {
            lock (_containers)
            {
                return known.Count > 0 && r.Next(4) > 0 ? known[r.Next(known.Count)] : Junk[r.Next(Junk.Length)];
            }
        }

        string C() => Uri.EscapeDataString(Pick(_containers));
        string N() => Uri.EscapeDataString(Pick(_networks));
        string V() => Uri.EscapeDataString(Pick(_volumes));
        string E() => Uri.EscapeDataString(Pick(_execs));
        string Q(params string[] values) => Uri.EscapeDataString(values[r.Next(values.Length)]);
        string Bool() => Q("0", "1", "true", "false", "yes", "", "2", "x");
        string Num() => Q("0", "1", "-1", "2", "", "x", "1.5", "99999999999999999999", "3");

        // Route templates: method, path, body template (null: no body), whether the answer may stay open, route name.
        (string Method, string Path, Func<JsonNode?>? Body, bool MayBlock, string Route) pick = r.Next(46) switch
        {
            0 => ("GET", "/_ping", null, false, "/_ping"),
            1 => ("HEAD", "/_ping", null, false, "/_ping"),
            2 => ("GET", "/version", null, false, "/version"),
            3 => ("GET", "/info", null, false, "/info"),
            4 => ("GET", "/system/df", null, false, "/system/df"),
            5 => ("GET", $"/events?since={Num()}&until={Num()}&filters={Q("", "{}", "{\"type\":[\"container\"]}", "[", "{\"x\":1}")}", null, true, "/events"),
            6 => ("GET", $"/images/json?all={Bool()}&filters={Q("", "{}", "{\"reference\":[\"isotest/*\"]}", "{\"dangling\":[\"true\"]}", "{")}", null, false, "/images/json"),
            // Pulls only from a registry that refuses at once (127.0.0.1:1) or from references that do not parse: no DNS, no network.
            7 => ("POST", $"/images/create?fromImage={Q("127.0.0.1:1/x", "127.0.0.1:1/a/b:c", "UPPER/case", "a@sha256:zz", "", ":", "isotest/host")}&tag={Q("", "latest", "::", "x")}", null, false, "/images/create"),
            8 => ("POST", $"/images/create?fromSrc={Q("-", "", "http://127.0.0.1:1/x.tar")}&repo={Q("fuzz/import", "", "UPPER", "a:b:c")}&tag={Q("t", "")}", () => JsonValue.Create(RandomText(r)), false, "/images/create"),
            9 => ("GET", $"/images/{Q("isotest/host", "nosuch", "", "..", "sha256:0")}/json", null, false, "/images/{name}/json"),
            10 => ("DELETE", $"/images/{Q("fuzz/import:t", "nosuch", "", "isotest/host", "sha256:")}?force={Bool()}", null, false, "/images/{name}"),
            11 => ("POST", $"/images/{Q("isotest/host", "nosuch", "")}/tag?repo={Q("fuzz/tagged", "", "UPPER", "a b")}&tag={Q("x", "", "::")}", null, false, "/images/{name}/tag"),
            12 => ("POST", $"/images/load?quiet={Bool()}", () => JsonValue.Create(RandomText(r)), false, "/images/load"),
            13 => ("GET", $"/images/get?names={Q("isotest/host", "nosuch", "")}", null, false, "/images/get"),
            14 => ("POST", "/images/prune", null, false, "/images/prune"),
            15 or 16 or 17 => ("POST", $"/containers/create?name={Q("", "fuzz-" + r.Next(50), "bad name", "/x", new string('n', 200))}", () => ContainerCreate(r), false, "/containers/create"),
            18 => ("GET", $"/containers/json?all={Bool()}&limit={Num()}&filters={Q("", "{}", "{\"status\":[\"running\"]}", "{\"label\":[\"a=b\"]}", "{\"name\":[\"fuzz\"]}", "{\"id\":[1]}", "[]", "{")}", null, false, "/containers/json"),
            19 => ("GET", $"/containers/{C()}/json", null, false, "/containers/{id}/json"),
            20 => ("POST", $"/containers/{C()}/start", null, false, "/containers/{id}/start"),
            21 => ("POST", $"/containers/{C()}/stop?t={Num()}", null, true, "/containers/{id}/stop"),
            22 => ("POST", $"/containers/{C()}/kill?signal={Q("", "KILL", "SIGTERM", "9", "0", "999", "NOPE", "SIGUSR1")}", null, false, "/containers/{id}/kill"),
            23 => ("POST", $"/containers/{C()}/restart?t={Num()}", null, true, "/containers/{id}/restart"),
            24 => ("POST", $"/containers/{C()}/wait?condition={Q("", "not-running", "next-exit", "removed", "bogus")}", null, true, "/containers/{id}/wait"),
            25 => ("GET", $"/containers/{C()}/logs?follow={Bool()}&stdout={Bool()}&stderr={Bool()}&timestamps={Bool()}&tail={Q("all", "0", "1", "-1", "x", "")}&since={Num()}", null, true, "/containers/{id}/logs"),
            26 => ("POST", $"/containers/{C()}/attach?stream={Bool()}&stdout={Bool()}&stderr={Bool()}&stdin={Bool()}&logs={Bool()}", null, true, "/containers/{id}/attach"),
            27 => ("GET", $"/containers/{C()}/archive?path={Q("/", "/etc/hostname", "/no/such", "", "../../..", "/proc/self/root", "relative")}", null, false, "/containers/{id}/archive"),
            28 => ("PUT", $"/containers/{C()}/archive?path={Q("/tmp", "/", "/no/such", "", "../..", "/etc/hostname")}", () => JsonValue.Create(RandomText(r)), false, "/containers/{id}/archive"),
            29 => ("HEAD", $"/containers/{C()}/archive?path={Q("/", "/etc", "", "/nope")}", null, false, "/containers/{id}/archive"),
            30 => ("GET", $"/containers/{C()}/top?ps_args={Q("", "aux", "-ef")}", null, false, "/containers/{id}/top"),
            31 => ("GET", $"/containers/{C()}/stats?stream={Bool()}&one-shot={Bool()}", null, true, "/containers/{id}/stats"),
            32 => ("POST", $"/containers/{C()}/rename?name={Q("", "fuzz-renamed-" + r.Next(20), "bad name", "/")}", null, false, "/containers/{id}/rename"),
            33 => ("POST", $"/containers/prune?filters={Q("", "{}", "{\"until\":[\"x\"]}", "{\"label\":[\"a\"]}", "{")}", null, false, "/containers/prune"),
            34 => ("DELETE", $"/containers/{C()}?force={Bool()}&v={Bool()}", null, false, "/containers/{id}"),
            35 => ("POST", $"/containers/{C()}/exec", () => ExecCreate(r), false, "/containers/{id}/exec"),
            36 or 37 => ("POST", $"/exec/{E()}/start", () => JsonNode.Parse($$"""{"Detach":{{(r.Next(4) == 0 ? "true" : "false")}},"Tty":false}"""), true, "/exec/{id}/start"),
            38 => ("POST", $"/exec/{E()}/resize?h={Num()}&w={Num()}", null, false, "/exec/{id}/resize"),
            39 => ("GET", $"/exec/{E()}/json", null, false, "/exec/{id}/json"),
            40 => ("POST", "/networks/create", () => JsonNode.Parse($$"""{"Name":"fuzz-net-{{r.Next(30)}}","Driver":"bridge","Internal":{{(r.Next(2) == 0 ? "true" : "false")}},"Labels":{"a":"b"},"CheckDuplicate":true}"""), false, "/networks/create"),
            41 => (r.Next(3) switch { 0 => "GET", 1 => "DELETE", _ => "GET" }, r.Next(4) == 0 ? $"/networks?filters={Q("", "{}", "{\"name\":[\"fuzz\"]}", "{")}" : $"/networks/{N()}", null, false, "/networks/{id}"),
            42 => ("POST", $"/networks/{N()}/{Q("connect", "disconnect")}", () => JsonNode.Parse($$"""{"Container":"{{Pick(_containers)}}","EndpointConfig":{"Aliases":["a","b"]},"Force":true}"""), false, "/networks/{id}/connect"),
            43 => ("POST", "/volumes/create", () => JsonNode.Parse($$"""{"Name":"fuzz-vol-{{r.Next(30)}}","Driver":"local","Labels":{"a":"b"},"DriverOpts":{"o":"v"} }"""), false, "/volumes/create"),
            44 => (r.Next(2) == 0 ? "GET" : "DELETE", r.Next(4) == 0 ? "/volumes" : $"/volumes/{V()}?force={Bool()}", null, false, "/volumes/{name}"),
            _ => (Methods[r.Next(Methods.Length)], "/" + string.Join('/', Enumerable.Range(0, r.Next(1, 5)).Select(_ => Uri.EscapeDataString(Junk[r.Next(Junk.Length)]))), null, false, "random"),
        };

        var (method, path, bodyTemplate, mayBlock, route) = pick;
        // Now and then the wrong method for a known path, and a version prefix (valid, too old, too new, garbage).
        if (r.Next(12) == 0)
        {
            method = Methods[r.Next(Methods.Length)];
        }

        path = r.Next(3) switch
        {
            0 => path,
            1 => "/v1.44" + path,
            _ => "/" + Q("v1.24", "v1.41", "v1.23", "v1.99", "v1", "vx", "v1.44.1") + path,
        };

        var body = bodyTemplate is null ? (r.Next(10) == 0 ? RandomBytes(r) : null) : Body(r, bodyTemplate());
        var hijackable = route is "/containers/{id}/attach" or "/exec/{id}/start";
        var mode = r.Next(20) switch
        {
            0 or 1 => "truncated-closed",
            2 => "truncated-open",
            3 => "head-cut",
            4 => "huge-header",
            5 => "many-headers",
            6 or 7 => "chunked",
            8 => "garbage",
            _ when hijackable && r.Next(2) == 0 => r.Next(3) == 0 ? "hijack-vanish" : "hijack",
            _ => "normal",
        };
        return new Input(method, path, body, mode, mayBlock || mode is "hijack" || route == "random", route);
    }

    private static JsonNode ContainerCreate(Random r)
    {
        var command = Commands[r.Next(Commands.Length)];
        var node = JsonNode.Parse(JsonSerializer.Serialize(new
        {
            Image = r.Next(6) == 0 ? "nosuch/image" : "isotest/host",
            Cmd = command,
            Env = new[] { "A=1", "B" },
            WorkingDir = r.Next(4) == 0 ? "/no/such" : "/",
            Labels = new Dictionary<string, string> { ["fuzz"] = "1" },
            ExposedPorts = new Dictionary<string, object> { ["80/tcp"] = new { } },
            Volumes = r.Next(4) == 0 ? new Dictionary<string, object> { ["/data"] = new { } } : null,
            HostConfig = new
            {
                NetworkMode = r.Next(3) == 0 ? "fuzz-net" : "none",
                Memory = 64L << 20,
                NanoCpus = 500_000_000,
                PidsLimit = 64,
                AutoRemove = r.Next(4) == 0,
                ReadonlyRootfs = r.Next(4) == 0,
                Binds = r.Next(4) == 0 ? new[] { "fuzz-vol:/vol" } : null,
                Tmpfs = new Dictionary<string, string> { ["/scratch"] = "size=1m" },
                PortBindings = r.Next(3) == 0 ? new Dictionary<string, object[]> { ["80/tcp"] = [new { HostIp = "127.0.0.1", HostPort = "" }] } : null,
                ExtraHosts = new[] { "h:127.0.0.1" },
            },
        }))!;
        return node;
    }

    private static JsonNode ExecCreate(Random r) => JsonNode.Parse(JsonSerializer.Serialize(new
    {
        AttachStdout = r.Next(4) > 0,
        AttachStderr = r.Next(4) > 0,
        AttachStdin = r.Next(8) == 0,
        Tty = r.Next(8) == 0,
        Cmd = ExecCommands[r.Next(ExecCommands.Length)],
        Env = new[] { "X=1" },
        WorkingDir = r.Next(4) == 0 ? "/nope" : "",
    }))!;

    /// <summary>A template's JSON, mutated (wrong types, huge, deep, removed fields), sometimes cut short or replaced by bytes.</summary>
    private static byte[] Body(Random r, JsonNode? template)
    {
        if (template is JsonValue v && v.TryGetValue<string>(out var raw))
        {
            return Encoding.Latin1.GetBytes(raw);   // a non-JSON body (tar uploads, imports): random bytes as text
        }

        var mutations = r.Next(4) == 0 ? 0 : r.Next(1, 4);
        for (var i = 0; i < mutations && template is not null; i++)
        {
            template = Mutate(r, template);
        }

        var bytes = Encoding.UTF8.GetBytes(template?.ToJsonString() ?? "null");
        return r.Next(8) switch
        {
            0 => bytes[..r.Next(bytes.Length + 1)],   // truncated JSON, with a correct Content-Length
            1 => RandomBytes(r),
            _ => bytes,
        };
    }

    private static JsonNode? Mutate(Random r, JsonNode root)
    {
        var nodes = new List<JsonNode>();
        void Walk(JsonNode? n)
        {
            if (n is null)
            {
                return;
            }

            nodes.Add(n);
            foreach (var child in n switch { JsonObject o => o.Select(p => p.Value), JsonArray a => a.AsEnumerable(), _ => [] })
            {
                Walk(child);
            }
        }

        Walk(root);
        var target = nodes[r.Next(nodes.Count)];
        if (target == root)
        {
            return r.Next(3) == 0 ? RandomValue(r) : root;
        }

        var parent = target.Parent!;
        var replacement = r.Next(5) == 0 ? null : RandomValue(r);
        switch (parent)
        {
            case JsonObject o:
                var key = o.First(p => p.Value == target).Key;
                if (replacement is null && r.Next(2) == 0)
                {
                    o.Remove(key);
                }
                else
                {
                    o[key] = replacement;
                }

                break;
            case JsonArray a:
                a[a.IndexOf(target)] = replacement;
                break;
        }

        return root;
    }

    private static JsonNode? RandomValue(Random r) => r.Next(14) switch
    {
        0 => JsonValue.Create(r.Next()),
        1 => JsonValue.Create(-r.NextInt64()),
        2 => JsonValue.Create(r.NextDouble() * 1e300),
        3 => JsonValue.Create(r.Next(2) == 0),
        4 => JsonValue.Create(""),
        5 => JsonValue.Create(new string('x', r.Next(1, 200_000))),
        6 => JsonValue.Create(Junk[r.Next(Junk.Length)]),
        7 => new JsonArray(JsonValue.Create(1), JsonValue.Create("a"), null),
        8 => new JsonObject { ["k"] = JsonValue.Create("v") },
        9 => Deep(r.Next(1, 100)),
        10 => JsonValue.Create(ulong.MaxValue),
        11 => JsonNode.Parse("1e400"),
        12 => new JsonArray(),
        _ => null,
    };

    private static JsonNode Deep(int depth)
    {
        JsonNode node = new JsonArray();
        for (var i = 0; i < depth; i++)
        {
            node = new JsonObject { ["d"] = node };
        }

        return node;
    }

    private static string RandomText(Random r) => Encoding.Latin1.GetString(RandomBytes(r));

    private static byte[] RandomBytes(Random r)
    {
        var bytes = new byte[r.Next(4) switch { 0 => 0, 1 => r.Next(16), 2 => r.Next(2048), _ => r.Next(200_000) }];
        r.NextBytes(bytes);
        if (bytes.Length > 512 && r.Next(2) == 0)
        {
            // Now and then a tar-looking head (ustar magic at 257), so the tar readers get past their first check.
            "ustar\0"u8.CopyTo(bytes.AsSpan(257));
        }

        return bytes;
    }

    /// <summary>A request as bytes, with the parts of its transport (how it is cut, framed, and what follows the send).</summary>
    private sealed record WireRequest(byte[] Head, byte[] Body, string Mode);

    private WireRequest Request(string method, string path, byte[]? body, string mode)
    {
        var r = _random;
        body ??= [];
        var head = new StringBuilder();
        head.Append(CultureInfo.InvariantCulture, $"{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: isotest-fuzz\r\n");
        if (mode is "hijack" or "hijack-vanish")
        {
            head.Append("Connection: Upgrade\r\nUpgrade: tcp\r\n");
        }
        else
        {
            head.Append("Connection: close\r\n");
        }

        if (body.Length > 0 || method == "POST")
        {
            head.Append("Content-Type: ").Append(r.Next(6) == 0 ? "application/x-tar" : "application/json").Append("\r\n");
        }

        switch (mode)
        {
            case "chunked":
                head.Append("Transfer-Encoding: chunked\r\n");
                break;
            case "huge-header":
                head.Append("X-Fuzz: ").Append('h', r.Next(10_000, 300_000)).Append("\r\n");
                break;
            case "many-headers":
                var count = r.Next(100, 2000);
                for (var i = 0; i < count; i++)
                {
                    head.Append(CultureInfo.InvariantCulture, $"X-Fuzz-{i}: {i}\r\n");
                }

                break;
        }

        if (mode != "chunked")
        {
            // truncated-*: announce more than is sent.
            var announced = mode is "truncated-closed" or "truncated-open" ? body.Length + 1 + r.Next(100_000) : body.Length;
            if (announced > 0 || method is "POST" or "PUT")
            {
                head.Append(CultureInfo.InvariantCulture, $"Content-Length: {announced}\r\n");
            }
        }

        head.Append("\r\n");
        var headBytes = Encoding.Latin1.GetBytes(head.ToString());
        if (mode == "chunked")
        {
            body = Chunked(body);
        }
        else if (mode is "truncated-closed" or "truncated-open")
        {
            body = body[..(body.Length == 0 ? 0 : r.Next(body.Length))];
        }
        else if (mode == "head-cut")
        {
            headBytes = headBytes[..r.Next(headBytes.Length)];
            body = [];
        }
        else if (mode == "garbage")
        {
            headBytes = RandomBytes(r);
            body = [];
        }

        return new WireRequest(headBytes, body, mode);
    }

    private static byte[] Chunked(byte[] body)
    {
        using var s = new MemoryStream();
        for (var offset = 0; offset < body.Length; offset += 4096)
        {
            var n = Math.Min(4096, body.Length - offset);
            s.Write(Encoding.ASCII.GetBytes($"{n:x}\r\n"));
            s.Write(body, offset, n);
            s.Write("\r\n"u8);
        }

        s.Write("0\r\n\r\n"u8);
        return s.ToArray();
    }

    /// <summary>What came back: the status (null: closed without one), the body as text, and how the exchange ended.</summary>
    private sealed record Answer(int? Status, string Body, bool Hung, bool GaveUp)
    {
        public bool HasMessage => Body.Contains("\"message\"", StringComparison.Ordinal);

        public JsonNode? Json
        {
            get
            {
                try
                {
                    return JsonNode.Parse(Body);
                }
                catch (JsonException)
                {
                    return null;
                }
            }
        }

        public string Describe() => Hung ? "nothing (timed out)" : $"{(Status is { } s ? s.ToString(CultureInfo.InvariantCulture) : "no status")}: {Shorten(Body)}";
    }

    private async Task<Answer> SendAsync(WireRequest request, TimeSpan deadline, bool mayBlock)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var timeout = new CancellationTokenSource(deadline);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token).ConfigureAwait(false);
        try
        {
            await socket.SendAsync(request.Head, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            if (request.Body.Length > 0)
            {
                await socket.SendAsync(request.Body, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            }

            if (request.Mode is "truncated-closed" or "head-cut" or "garbage")
            {
                socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (SocketException)
        {
            // The server closed first (a refused head, an oversized body): what it answered is still readable.
        }
        catch (OperationCanceledException)
        {
            // It stopped reading a body we are still sending: it owes no answer before it has the request.
            return new Answer(null, "", Hung: false, GaveUp: true);
        }

        // The client's patience: a stream or a request still owed its body gets a short one, everything else the deadline.
        var patience = mayBlock || request.Mode is "truncated-open" or "hijack-vanish" ? StreamPatience : deadline;
        using var read = new CancellationTokenSource(patience);
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, read.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                if (received.Length < 1 << 20)
                {
                    received.Write(buffer, 0, n);
                }
            }
        }
        catch (OperationCanceledException)
        {
            var partial = Parse(received.ToArray());
            // A head owed for a request sent in full, on a route that answers at once, and none came: the server hangs.
            var hung = !mayBlock && request.Mode is not ("truncated-open" or "hijack-vanish") && partial.Status is null;
            return partial with { Hung = hung, GaveUp = !hung };
        }
        catch (SocketException)
        {
            // Reset by the server (a connection it gave up on): what arrived before still counts.
        }

        return Parse(received.ToArray());
    }

    private static Answer Parse(byte[] bytes)
    {
        var text = Encoding.UTF8.GetString(bytes);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var statusLine = text.Split("\r\n", 2)[0].Split(' ');
        int? status = statusLine.Length >= 2 && statusLine[0].StartsWith("HTTP/", StringComparison.Ordinal) && int.TryParse(statusLine[1], NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;
        var body = end < 0 ? "" : text[(end + 4)..];
        if (end >= 0 && text[..end].Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            body = Unchunk(body);
        }

        return new Answer(status, body, Hung: false, GaveUp: false);
    }

    private static string Unchunk(string body)
    {
        var s = new StringBuilder();
        var at = 0;
        while (at < body.Length)
        {
            var eol = body.IndexOf("\r\n", at, StringComparison.Ordinal);
            if (eol < 0 || !int.TryParse(body.AsSpan(at, eol - at), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var n) || n == 0)
            {
                break;
            }

            s.Append(body, eol + 2, Math.Min(n, body.Length - eol - 2));
            at = eol + 2 + n + 2;
        }

        return s.ToString();
    }

    /// <summary>
    /// Nothing half-made: every container and network the server lists was reported created to a client, and
    /// inspects; every volume lists with a directory in the store; every one of them can be removed, and then
    /// nothing but the default networks is left.
    /// </summary>
    private async Task CheckResourcesAsync(FuzzReport report)
    {
        async Task<JsonArray> ListAsync(string path, string? field = null)
        {
            var answer = await SendAsync(Request("GET", path, null, "normal"), AnswerDeadline, false).ConfigureAwait(false);
            var json = answer.Json;
            if (answer.Status != 200 || (field is null ? json as JsonArray : json?[field] as JsonArray) is not { } list)
            {
                report.Failures.Add($"GET {path} answered {answer.Describe()}");
                return [];
            }

            return list;
        }

        async Task ExpectAsync(string method, string path, params int[] statuses)
        {
            var answer = await SendAsync(Request(method, path, null, "normal"), AnswerDeadline, false).ConfigureAwait(false);
            if (answer.Status is not { } s || !statuses.Contains(s))
            {
                report.Failures.Add($"{method} {path} answered {answer.Describe()}");
            }
        }

        foreach (var c in await ListAsync("/containers/json?all=1").ConfigureAwait(false))
        {
            var id = c?["Id"]?.GetValue<string>() ?? "";
            if (!_reportedContainers.Contains(id))
            {
                report.Failures.Add($"container {id} ({c?["Names"]?.ToJsonString()}, image {c?["Image"]}) is listed but no create reported it");
            }

            await ExpectAsync("GET", $"/containers/{id}/json", 200).ConfigureAwait(false);
            await ExpectAsync("DELETE", $"/containers/{id}?force=1&v=1", 204, 404).ConfigureAwait(false);   // 404: an AutoRemove container that went on its own
        }

        foreach (var n in await ListAsync("/networks").ConfigureAwait(false))
        {
            var (id, name) = (n?["Id"]?.GetValue<string>() ?? "", n?["Name"]?.GetValue<string>() ?? "");
            if (name is "bridge" or "host" or "none")
            {
                continue;
            }

            if (!_reportedNetworks.Contains(id))
            {
                report.Failures.Add($"network {name} ({id}) is listed but no create reported it");
            }

            await ExpectAsync("GET", $"/networks/{id}", 200).ConfigureAwait(false);
            await ExpectAsync("DELETE", $"/networks/{id}", 204).ConfigureAwait(false);
        }

        foreach (var v in await ListAsync("/volumes", "Volumes").ConfigureAwait(false))
        {
            var name = v?["Name"]?.GetValue<string>() ?? "";
            await ExpectAsync("GET", $"/volumes/{Uri.EscapeDataString(name)}", 200).ConfigureAwait(false);
            await ExpectAsync("DELETE", $"/volumes/{Uri.EscapeDataString(name)}", 204).ConfigureAwait(false);
        }

        if ((await ListAsync("/containers/json?all=1").ConfigureAwait(false)).Count is var left and > 0)
        {
            report.Failures.Add($"{left} containers are still listed after each was removed");
        }

        if ((await ListAsync("/networks").ConfigureAwait(false)).Count is var networks and not 3)
        {
            report.Failures.Add($"{networks} networks listed after the fuzzer's were removed, not the 3 defaults");
        }

        if ((await ListAsync("/volumes", "Volumes").ConfigureAwait(false)).Count is var volumes and > 0)
        {
            report.Failures.Add($"{volumes} volumes are still listed after each was removed");
        }
    }

    private static string Shorten(string text) => text.Length > 160 ? text[..160] + $"... ({text.Length} chars)" : text;

    private static string Shorten(byte[]? body) => body is null ? "none" : Shorten(Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 200)))) + (body.Length > 200 ? $" ({body.Length} bytes)" : "");
}
