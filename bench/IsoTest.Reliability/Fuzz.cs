using System.Diagnostics;
using System.Text;
using IsoTest;

namespace IsoTest.Reliability;

/// <summary>
/// A property test of the spec validation that takes outside input (the builder, as the CLI and the API server feed
/// it, and Docker-format seccomp JSON): for any input, Build() gives a spec or an InvalidContainerSpecException whose
/// every message names the call; never another exception, never a hang.
/// </summary>
internal static class Fuzz
{
    private static readonly string[] Seeds =
    [
        "", " ", "/", "//", "/a/../..", "..", "/tmp", "/etc/passwd", "a=b", "\0", "x\0y", "-1", "0", "4294967295", "18446744073709551616",
        "1000:1000", "root", "a b", "16m", "1.5g", "0.5", "NaN", "-0", "1e309", "{}", "[]", "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
        "unconfined", "default", "\u00e9", "\ud800", new string('a', 70), "C:\\x", "~/x", "$HOME", "/proc/self/fd/0", "0-1", "0,2", "99999",
    ];

    public static int Run(int inputs)
    {
        var random = new Random(8); // fixed seed: a failure can be replayed
        var clock = Stopwatch.StartNew();
        var valid = 0;
        var invalid = 0;
        var crashes = new List<string>();
        for (var i = 0; i < inputs; i++)
        {
            var (builder, description) = Generate(random);
            var one = Stopwatch.StartNew();
            try
            {
                builder.Build();
                valid++;
            }
            catch (InvalidContainerSpecException ex)
            {
                invalid++;
                if (ex.Errors.Count == 0 || ex.Errors.Any(e => e.Length < 10))
                {
                    crashes.Add($"unclear error for {description}: {ex.Message}");
                }
            }
            catch (Exception ex) when (ex is ArgumentException)
            {
                // The builder's own guards (null/empty arguments) throw ArgumentException at the call: a clear error too.
                invalid++;
            }
            catch (Exception ex)
            {
                crashes.Add($"{ex.GetType().Name} for {description}: {ex.Message}");
            }

            if (one.Elapsed > TimeSpan.FromSeconds(5))
            {
                crashes.Add($"took {one.Elapsed.TotalSeconds:F1} s: {description}");
            }
        }

        Console.WriteLine($"fuzz: {inputs} inputs in {clock.Elapsed.TotalSeconds:F1} s: {valid} valid specs, {invalid} clear errors, {crashes.Count} crashes/unclear/slow");
        foreach (var crash in crashes.Take(20))
        {
            Console.WriteLine("  " + crash);
        }

        return crashes.Count == 0 ? 0 : 1;
    }

    private static string Text(Random r)
    {
        var seed = Seeds[r.Next(Seeds.Length)];
        return r.Next(4) switch
        {
            0 => seed,
            1 => seed + Seeds[r.Next(Seeds.Length)],
            2 => Mutate(r, seed),
            _ => RandomString(r),
        };
    }

    private static string Mutate(Random r, string s)
    {
        var sb = new StringBuilder(s);
        for (var n = r.Next(1, 4); n > 0; n--)
        {
            var at = sb.Length == 0 ? 0 : r.Next(sb.Length);
            switch (r.Next(3))
            {
                case 0 when sb.Length > 0: sb.Remove(at, 1); break;
                case 1: sb.Insert(at, (char)r.Next(0, 0x250)); break;
                default: sb.Insert(at, Seeds[r.Next(Seeds.Length)]); break;
            }
        }

        return sb.ToString();
    }

    private static string RandomString(Random r) => new([.. Enumerable.Range(0, r.Next(0, 40)).Select(_ => (char)r.Next(0, 0x7F))]);

    private static string Json(Random r)
    {
        string[] actions = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "BOGUS", ""];
        string[] ops = ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_LT", "X"];
        var rules = string.Join(',', Enumerable.Range(0, r.Next(0, 4)).Select(_ =>
        {
            var name = Text(r).Replace("\"", "", StringComparison.Ordinal).Replace("\\", "", StringComparison.Ordinal);
            var arg = "{\"index\":" + r.Next(-1, 8) + ",\"value\":" + r.Next() + ",\"op\":\"" + ops[r.Next(ops.Length)] + "\"}";
            var includes = "{\"minKernel\":\"" + r.Next(0, 7) + "." + r.Next(0, 20) + "\"}";
            return "{\"names\":[\"" + name + "\"],\"action\":\"" + actions[r.Next(actions.Length)] + "\",\"args\":[" + arg + "],\"includes\":" + includes + "}";
        }));
        var json = $$"""{"defaultAction":"{{actions[r.Next(actions.Length)]}}","defaultErrnoRet":{{r.Next(-2, 70000)}},"syscalls":[{{rules}}]}""";
        return r.Next(3) == 0 ? Mutate(r, json) : json;
    }

    private static (ContainerBuilder, string) Generate(Random r)
    {
        var b = new ContainerBuilder();
        var calls = new List<string>();
        void Call(string name, Func<ContainerBuilder, ContainerBuilder> f)
        {
            calls.Add(name);
            try
            {
                b = f(b);
            }
            catch (ArgumentException)
            {
                // Null/empty guards at the call itself.
            }
        }

        if (r.Next(5) > 0)
        {
            Call("FromHost", x => x.FromHost());
        }
        else
        {
            var t = Text(r);
            Call($"FromDirectory({t})", x => r.Next(2) == 0 ? x.FromDirectory(t) : x.FromImage(t));
        }

        for (var n = r.Next(0, 8); n > 0; n--)
        {
            var a = Text(r);
            var c = Text(r);
            switch (r.Next(14))
            {
                case 0: Call($"WithCommand({a},{c})", x => x.WithCommand(a, c)); break;
                case 1: Call($"WithEnvironment({a},{c})", x => x.WithEnvironment(a, c)); break;
                case 2: Call($"WithUser({a})", x => x.WithUser(a)); break;
                case 3: Call($"WithHostname({a})", x => x.WithHostname(a)); break;
                case 4: Call($"WithMemoryLimit({a})", x => x.WithMemoryLimit(a)); break;
                case 5: Call($"WithCpuLimit", x => x.WithCpuLimit(r.NextDouble() * 8 - 1)); break;
                case 6: Call($"WithPort", x => x.WithPort(r.Next(-5, 70000))); break;
                case 7: Call($"WithBindMount({a},{c})", x => x.WithBindMount(a, c, r.Next(2) == 0)); break;
                case 8: Call($"WithTmpfsMount({a},{c})", x => x.WithTmpfsMount(a, c)); break;
                case 9: Call($"WithFile({a})", x => x.WithFile(a, c)); break;
                case 10: Call($"WithWorkingDirectory({a})", x => x.WithWorkingDirectory(a)); break;
                case 11: Call($"WithCpuset({a})", x => x.WithCpuset(a)); break;
                case 12:
                    var json = Json(r);
                    Call($"WithSeccompProfile({json})", x => x.WithSeccompProfile(SeccompProfile.FromJson(json)));
                    break;
                default: Call($"WithName({a})", x => x.WithName(a)); break;
            }
        }

        if (r.Next(4) > 0)
        {
            Call("WithCommand(true)", x => x.WithCommand("true"));
        }

        return (b, string.Join(" . ", calls));
    }
}
