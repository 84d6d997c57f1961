using IsoTest.Engine.RootFs;

namespace IsoTest.Engine.Containers;

/// <summary>
/// What runs in a container and how: the argv, the environment and the working directory, from the spec
/// over the image's defaults, with Docker's defaults last. Both the command and every exec use it, so
/// <c>docker exec</c>'s behaviour holds: an exec sees the container's environment.
/// </summary>
internal sealed record Payload(IReadOnlyList<string> Argv, IReadOnlyList<string> Environment, string WorkingDirectory)
{
    public static Payload For(ContainerSpec spec, ResolvedRoot root, ResolvedUser user, string hostname)
    {
        var image = root.Config;

        // docker run semantics: an explicit entrypoint drops the image's CMD; without one, the image's
        // ENTRYPOINT stays and the spec's command (else the image's CMD) are its arguments.
        IReadOnlyList<string> argv = spec.Entrypoint.Count > 0
            ? spec.Argv
            : [.. image?.Entrypoint ?? [], .. spec.Command.Count > 0 ? spec.Command : image?.Command ?? []];
        return new Payload(argv, EnvironmentOf(spec, image, user, hostname), spec.WorkingDirectory ?? image?.WorkingDirectory ?? "/");
    }

    /// <summary>KEY=VALUE entries: the image's, overridden by the spec's, then PATH, HOSTNAME and HOME where neither set them.</summary>
    private static List<string> EnvironmentOf(ContainerSpec spec, ImageConfig? image, ResolvedUser user, string hostname)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in image?.Environment ?? [])
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                env[entry[..eq]] = entry[(eq + 1)..];
            }
        }

        foreach (var (key, value) in spec.Environment)
        {
            env[key] = value;
        }

        // As Docker: programs that find their siblings through PATH (initdb, shells) need one.
        env.TryAdd("PATH", ContainerSpec.DefaultPath);
        env.TryAdd("HOSTNAME", hostname);
        env.TryAdd("HOME", user.Home);
        return [.. env.Select(e => $"{e.Key}={e.Value}")];
    }
}
