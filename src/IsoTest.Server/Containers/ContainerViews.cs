using System.Globalization;

namespace IsoTest.Server.Containers;

/// <summary>What GET /containers/{id}/json and GET /containers/json return, in dockerd's shapes.</summary>
internal static class ContainerViews
{
    private const string ZeroTime = "0001-01-01T00:00:00Z";

    /// <summary>Where the engine publishes ports: the host's loopback.</summary>
    private const string PublishedOn = "127.0.0.1";

    public static string Time(DateTimeOffset? time) =>
        time is { } t ? t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "Z" : ZeroTime;

    public static Dictionary<string, object?> Inspect(ServerContainer c)
    {
        var spec = c.Inner.Spec;
        var argv = spec.Argv;
        var request = c.Request;
        return new()
        {
            ["Id"] = c.Id,
            ["Created"] = Time(c.Created),
            ["Path"] = argv.Count > 0 ? argv[0] : "",
            ["Args"] = argv.Skip(1).ToArray(),
            ["State"] = new Dictionary<string, object?>
            {
                ["Status"] = c.Status,
                ["Running"] = c.Running,
                ["Paused"] = false,
                ["Restarting"] = false,
                ["OOMKilled"] = c.Inner.OomKilled,
                ["Dead"] = false,
                ["Pid"] = 0,
                ["ExitCode"] = c.Inner.ExitCode ?? c.StartFailureExitCode ?? 0,
                ["Error"] = "",
                ["StartedAt"] = Time(c.StartedAt),
                ["FinishedAt"] = Time(c.FinishedAt),
            },
            ["Image"] = c.Image.Id,
            ["ResolvConfPath"] = "",
            ["HostnamePath"] = "",
            ["HostsPath"] = "",
            ["LogPath"] = "",
            ["Name"] = "/" + c.Name,
            ["RestartCount"] = 0,
            ["Driver"] = "overlay2",
            ["Platform"] = "linux",
            ["MountLabel"] = "",
            ["ProcessLabel"] = "",
            ["AppArmorProfile"] = "",
            ["HostConfig"] = new Dictionary<string, object?>
            {
                ["NetworkMode"] = request.HostConfig?.NetworkMode is { Length: > 0 } mode ? mode : "bridge",
                ["AutoRemove"] = c.AutoRemove,
                ["Memory"] = spec.Limits.MemoryBytes ?? 0,
                ["NanoCpus"] = spec.Limits.Cpus is { } cpus ? (long)(cpus * 1e9) : 0,
                ["PidsLimit"] = spec.Limits.Pids,
                ["CpusetCpus"] = spec.Limits.CpusetCpus ?? "",
                ["ReadonlyRootfs"] = spec.ReadOnlyRootFileSystem,
                ["Binds"] = request.HostConfig?.Binds,
                ["PortBindings"] = request.HostConfig?.PortBindings ?? [],
                ["Privileged"] = false,
            },
            ["Mounts"] = spec.Mounts.Select(m => new Dictionary<string, object?>
            {
                ["Type"] = m.Kind switch { MountKind.Tmpfs => "tmpfs", _ => "bind" },
                ["Source"] = m.Source ?? "",
                ["Destination"] = m.Target,
                ["Mode"] = m.ReadOnly ? "ro" : "",
                ["RW"] = !m.ReadOnly,
                ["Propagation"] = "rprivate",
            }).ToArray(),
            ["Config"] = new Dictionary<string, object?>
            {
                ["Hostname"] = spec.Hostname ?? "",
                ["Domainname"] = "",
                ["User"] = spec.User ?? "",
                ["AttachStdin"] = false,
                ["AttachStdout"] = true,
                ["AttachStderr"] = true,
                ["ExposedPorts"] = spec.Ports.ToDictionary(p => $"{p}/tcp", _ => new object()),
                ["Tty"] = false,
                ["OpenStdin"] = false,
                ["StdinOnce"] = false,
                ["Env"] = spec.Environment.Select(e => $"{e.Key}={e.Value}").ToArray(),
                ["Cmd"] = spec.Command.ToArray(),
                ["Image"] = request.Image ?? "",
                ["Volumes"] = null,
                ["WorkingDir"] = spec.WorkingDirectory ?? "",
                ["Entrypoint"] = spec.Entrypoint.Count > 0 ? spec.Entrypoint.ToArray() : null,
                ["OnBuild"] = null,
                ["Labels"] = spec.Labels,
                ["StopSignal"] = request.StopSignal ?? "SIGTERM",
                ["StopTimeout"] = (int)spec.StopTimeout.TotalSeconds,
            },
            ["NetworkSettings"] = Network(c),
        };
    }

    public static Dictionary<string, object?> Summary(ServerContainer c)
    {
        var spec = c.Inner.Spec;
        return new()
        {
            ["Id"] = c.Id,
            ["Names"] = new[] { "/" + c.Name },
            ["Image"] = c.Request.Image ?? "",
            ["ImageID"] = c.Image.Id,
            ["Command"] = string.Join(' ', spec.Argv),
            ["Created"] = c.Created.ToUnixTimeSeconds(),
            ["Ports"] = Ports(c).Select(p => new Dictionary<string, object?>
            {
                ["IP"] = p.Host?.Host,
                ["PrivatePort"] = p.Port,
                ["PublicPort"] = p.Host?.Port,
                ["Type"] = "tcp",
            }).ToArray(),
            ["Labels"] = spec.Labels,
            ["State"] = c.Status,
            ["Status"] = HumanStatus(c),
            ["HostConfig"] = new Dictionary<string, object?> { ["NetworkMode"] = c.Request.HostConfig?.NetworkMode is { Length: > 0 } m ? m : "bridge" },
            ["NetworkSettings"] = new Dictionary<string, object?> { ["Networks"] = Networks(c) },
            ["Mounts"] = Array.Empty<object>(),
        };
    }

    /// <summary>Docker's "Up 3 seconds" / "Exited (0) 2 seconds ago" / "Created".</summary>
    private static string HumanStatus(ServerContainer c) => c.Status switch
    {
        "running" => $"Up {Ago(c.StartedAt)}",
        "exited" => $"Exited ({c.Inner.ExitCode ?? c.StartFailureExitCode ?? 0}) {Ago(c.FinishedAt)} ago",
        "created" => "Created",
        var s => s,
    };

    private static string Ago(DateTimeOffset? since)
    {
        var span = since is { } t ? DateTimeOffset.UtcNow - t : TimeSpan.Zero;
        return span.TotalSeconds < 1 ? "Less than a second" : span.TotalMinutes < 1 ? $"{(int)span.TotalSeconds} seconds" : span.TotalHours < 1 ? $"{(int)span.TotalMinutes} minutes" : $"{(int)span.TotalHours} hours";
    }

    private static List<(int Port, ContainerEndpoint? Host)> Ports(ServerContainer c)
    {
        var ports = new List<(int, ContainerEndpoint?)>();
        foreach (var port in c.Inner.Spec.Ports)
        {
            ContainerEndpoint? endpoint = null;
            if (c.Running)
            {
                try
                {
                    endpoint = c.Inner.GetEndpoint(port);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    // Not published (yet): Docker shows the port without a host side.
                }
            }

            ports.Add((port, endpoint));
        }

        return ports;
    }

    private static Dictionary<string, object?> Network(ServerContainer c) => new()
    {
        ["Bridge"] = "",
        ["SandboxID"] = "",
        ["HairpinMode"] = false,
        ["Ports"] = Ports(c).ToDictionary(p => $"{p.Port}/tcp", p => p.Host is { } h
            ? new[] { new Dictionary<string, string> { ["HostIp"] = h.Host, ["HostPort"] = h.Port.ToString(CultureInfo.InvariantCulture) } }
            : null),
        ["Gateway"] = PublishedOn,
        ["IPAddress"] = "",
        ["IPPrefixLen"] = 0,
        ["MacAddress"] = "",
        ["Networks"] = Networks(c),
    };

    private static Dictionary<string, object?> Networks(ServerContainer c)
    {
        var user = SpecMapper.UserNetworks(c.Request);
        var names = user.Count > 0 ? user : [c.Request.HostConfig?.NetworkMode is { Length: > 0 } mode && mode != "default" ? mode : "bridge"];
        return names.ToDictionary(name => name, name => (object?)new Dictionary<string, object?>
            {
                ["NetworkID"] = name,
                ["EndpointID"] = c.Running ? c.Id : "",
                // Clients that believe they run inside a container (a /.dockerenv exists) reach published
                // ports through the gateway; IsoTest publishes them on the host's loopback.
                ["Gateway"] = PublishedOn,
                ["IPAddress"] = "",
                ["IPPrefixLen"] = 0,
                ["MacAddress"] = "",
                ["Aliases"] = c.Request.NetworkingConfig?.EndpointsConfig?.GetValueOrDefault(name)?.Aliases,
            });
    }
}
