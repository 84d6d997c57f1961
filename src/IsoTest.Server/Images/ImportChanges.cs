using System.Text.Json;
using IsoTest.Engine.Images;
using IsoTest.Server.Http;

namespace IsoTest.Server.Images;

/// <summary>
/// <c>docker import --change</c>: Dockerfile instructions that set the imported image's defaults. The ones
/// that describe a runtime default are applied (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR,
/// STOPSIGNAL); any other is refused by name, as dockerd refuses instructions it does not allow there.
/// </summary>
internal static class ImportChanges
{
    public static ContainerDefaults Parse(IReadOnlyList<string> changes)
    {
        var d = new ContainerDefaults();
        foreach (var change in changes)
        {
            var line = change.Trim();
            var space = line.IndexOfAny([' ', '\t']);
            var instruction = (space < 0 ? line : line[..space]).ToUpperInvariant();
            var rest = space < 0 ? "" : line[(space + 1)..].Trim();
            if (rest.Length == 0)
            {
                throw DockerApiException.BadRequest($"--change \"{change}\": {instruction} needs an argument");
            }

            d = instruction switch
            {
                "CMD" => d with { Cmd = Command(rest) },
                "ENTRYPOINT" => d with { Entrypoint = Command(rest) },
                "ENV" => d with { Env = [.. Env(d.Env, rest, change)] },
                "EXPOSE" => d with { ExposedPorts = Expose(d.ExposedPorts, rest, change) },
                "LABEL" => d with { Labels = Labels(d.Labels, rest, change) },
                "USER" => d with { User = rest },
                "WORKDIR" => d with { WorkingDir = rest },
                "STOPSIGNAL" => d with { StopSignal = rest },
                _ => throw DockerApiException.BadRequest($"--change \"{change}\": {instruction} is not allowed in an import; use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR or STOPSIGNAL"),
            };
        }

        return d;
    }

    /// <summary>The exec form (<c>["a","b"]</c>) as given; the shell form runs under <c>/bin/sh -c</c>, as Docker does.</summary>
    private static string[] Command(string value)
    {
        if (value.StartsWith('['))
        {
            try
            {
                return JsonSerializer.Deserialize<string[]>(value, ServerJson.Options) ?? [];
            }
            catch (JsonException e)
            {
                throw DockerApiException.BadRequest($"'{value}' is not a JSON array of strings (exec form): {e.Message}");
            }
        }

        return ["/bin/sh", "-c", value];
    }

    /// <summary><c>ENV K=V K2=V2</c> or the old <c>ENV K V</c>; a later value of a key replaces the earlier.</summary>
    private static List<string> Env(string[]? current, string rest, string change)
    {
        var pairs = rest.Contains('=', StringComparison.Ordinal)
            ? Words(rest).Select(w => w.IndexOf('=', StringComparison.Ordinal) is > 0 and var eq ? (w[..eq], w[(eq + 1)..]) : throw DockerApiException.BadRequest($"--change \"{change}\": '{w}' is not KEY=VALUE")).ToList()
            : [(Words(rest)[0], rest[Words(rest)[0].Length..].Trim())];
        var env = (current ?? []).ToList();
        foreach (var (key, value) in pairs)
        {
            env.RemoveAll(e => e.StartsWith(key + "=", StringComparison.Ordinal));
            env.Add($"{key}={value}");
        }

        return env;
    }

    private static Dictionary<string, JsonElement> Expose(Dictionary<string, JsonElement>? current, string rest, string change)
    {
        var ports = new Dictionary<string, JsonElement>(current ?? [], StringComparer.Ordinal);
        foreach (var word in Words(rest))
        {
            var slash = word.IndexOf('/', StringComparison.Ordinal);
            var number = slash < 0 ? word : word[..slash];
            var protocol = slash < 0 ? "tcp" : word[(slash + 1)..].ToLowerInvariant();
            if (!ushort.TryParse(number, out var port) || port == 0 || protocol is not ("tcp" or "udp" or "sctp"))
            {
                throw DockerApiException.BadRequest($"--change \"{change}\": '{word}' is not a port (PORT or PORT/tcp|udp|sctp)");
            }

            ports[$"{port}/{protocol}"] = JsonSerializer.SerializeToElement(new Dictionary<string, string>(), ServerJson.Options);
        }

        return ports;
    }

    private static Dictionary<string, string> Labels(Dictionary<string, string>? current, string rest, string change)
    {
        var labels = new Dictionary<string, string>(current ?? [], StringComparer.Ordinal);
        foreach (var word in Words(rest))
        {
            var eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw DockerApiException.BadRequest($"--change \"{change}\": '{word}' is not KEY=VALUE");
            }

            labels[word[..eq]] = word[(eq + 1)..];
        }

        return labels;
    }

    /// <summary>Words separated by blanks; double quotes group and are removed (<c>LABEL a="b c"</c>).</summary>
    private static List<string> Words(string value)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        var quoted = false;
        var any = false;
        foreach (var c in value)
        {
            if (c == '"')
            {
                quoted = !quoted;
                any = true;
            }
            else if (!quoted && char.IsWhiteSpace(c))
            {
                if (any)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    any = false;
                }
            }
            else
            {
                current.Append(c);
                any = true;
            }
        }

        if (any)
        {
            words.Add(current.ToString());
        }

        return words;
    }
}
