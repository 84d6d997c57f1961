using System.Globalization;
using IsoTest.Server.Api;
using IsoTest.Server.Http;
using IsoTest.Server.Images;

namespace IsoTest.Server.Containers;

/// <summary>
/// A Docker create request becomes a <see cref="ContainerBuilder"/>, so the server's specs go through the
/// same validator as the builder's and the CLI's. What IsoTest cannot honour is refused with the reason,
/// never dropped silently.
/// </summary>
internal static class SpecMapper
{
    public static ContainerBuilder ToBuilder(CreateContainerRequest request, ResolvedImage image, string id, string name, Networks.NetworkTable networks, Volumes.VolumeTable volumes)
    {
        var host = request.HostConfig ?? new HostConfigRequest();
        Refuse(request, host);

        var builder = image.ApplyTo(new ContainerBuilder());
        // Docker's rules: an Entrypoint given at create replaces the image's and drops its Cmd; a Cmd given replaces the image's Cmd.
        if (request.Entrypoint is { } entrypoint)
        {
            builder = builder.WithEntrypoint([.. entrypoint]).WithCommand([.. request.Cmd ?? []]);
        }
        else if (request.Cmd is { Count: > 0 } cmd)
        {
            builder = builder.WithCommand([.. cmd]);
        }

        foreach (var variable in request.Env ?? [])
        {
            var eq = variable.IndexOf('=', StringComparison.Ordinal);
            builder = eq < 0 ? builder : builder.WithEnvironment(variable[..eq], variable[(eq + 1)..]);
        }

        builder = builder.WithHostname(string.IsNullOrEmpty(request.Hostname) ? id[..12] : request.Hostname);
        if (!string.IsNullOrEmpty(request.WorkingDir))
        {
            builder = builder.WithWorkingDirectory(request.WorkingDir);
        }

        if (!string.IsNullOrEmpty(request.User))
        {
            builder = builder.WithUser(request.User);
        }

        foreach (var (key, value) in request.Labels ?? [])
        {
            builder = builder.WithLabel(key, value);
        }

        if (request.StopTimeout is > 0 and var seconds)
        {
            builder = builder.WithStopTimeout(TimeSpan.FromSeconds(seconds));
        }

        builder = Limits(builder, host);
        builder = Mounts(builder, host, volumes);
        foreach (var port in ContainerPorts(request, host))
        {
            builder = HostPort(host, port) is { } fixedPort ? builder.WithPortBinding(fixedPort, port) : builder.WithPort(port);
        }

        builder = host.NetworkMode switch
        {
            null or "" or "default" or "bridge" or "none" => builder,
            "host" => builder.WithNetwork(Network.Host),
            _ => builder,
        };
        builder = JoinNetworks(builder, request, id, name, networks);
        return builder.WithReadOnlyRootFileSystem(host.ReadonlyRootfs);
    }

    /// <summary>The user-defined networks a create names: HostConfig.NetworkMode and NetworkingConfig's endpoints.</summary>
    public static IReadOnlyList<string> UserNetworks(CreateContainerRequest request)
    {
        var names = new List<string>();
        if (request.HostConfig?.NetworkMode is { Length: > 0 } mode && mode != "default" && !Networks.NetworkTable.Predefined.Contains(mode)
            && !mode.StartsWith("container:", StringComparison.Ordinal))
        {
            names.Add(mode);
        }

        names.AddRange((request.NetworkingConfig?.EndpointsConfig?.Keys.AsEnumerable() ?? [])
            .Where(k => k != "default" && !Networks.NetworkTable.Predefined.Contains(k) && !names.Contains(k)));
        return names;
    }

    /// <summary>
    /// Joins each user-defined network, where the container answers to its name, its short id (as on
    /// dockerd) and the aliases the request gives.
    /// </summary>
    private static ContainerBuilder JoinNetworks(ContainerBuilder builder, CreateContainerRequest request, string id, string name, Networks.NetworkTable networks)
    {
        var joined = UserNetworks(request);
        if (request.HostConfig?.NetworkMode is { } mode && mode.StartsWith("container:", StringComparison.Ordinal))
        {
            throw DockerApiException.BadRequest($"--network {mode} (sharing another container's network namespace) is not supported by IsoTest's server: put both containers on one network (docker network create) instead");
        }

        if (joined.Count == 0)
        {
            return builder;
        }

        // A name that is no host name (dockerd's generated ones have '_') is not written to /etc/hosts.
        var aliases = new List<string> { id[..12] };
        if (Uri.CheckHostName(name) == UriHostNameType.Dns && !name.Contains('_', StringComparison.Ordinal))
        {
            aliases.Add(name);
        }

        foreach (var network in joined)
        {
            var found = networks.TryFind(network) ?? throw new DockerApiException(Microsoft.AspNetCore.Http.StatusCodes.Status404NotFound, $"network {network} not found");
            builder = builder.WithNetwork(found.Inner);
            aliases.AddRange(request.NetworkingConfig?.EndpointsConfig?.GetValueOrDefault(network)?.Aliases ?? []);
        }

        return builder.WithNetworkAliases([.. aliases.Distinct(StringComparer.Ordinal)]);
    }

    private static void Refuse(CreateContainerRequest request, HostConfigRequest host)
    {
        if (host.Privileged)
        {
            throw DockerApiException.BadRequest("privileged containers are not supported: IsoTest runs every container with Docker's default confinement (capabilities, seccomp, devices); drop --privileged");
        }

        if (request.Tty)
        {
            throw DockerApiException.BadRequest("a TTY (-t) is not supported by IsoTest's server yet: run without -t");
        }

        if (request.OpenStdin || request.AttachStdin)
        {
            throw DockerApiException.BadRequest("stdin (-i) is not supported by IsoTest's server yet: run without -i, or pass input as a file (docker cp) or an argument");
        }
    }

    private static ContainerBuilder Limits(ContainerBuilder builder, HostConfigRequest host)
    {
        if (host.Memory > 0)
        {
            builder = builder.WithMemoryLimit(host.Memory);
        }

        if (host.NanoCpus > 0)
        {
            builder = builder.WithCpuLimit(host.NanoCpus / 1e9);
        }
        else if (host.CpuQuota > 0)
        {
            builder = builder.WithCpuLimit((double)host.CpuQuota / (host.CpuPeriod > 0 ? host.CpuPeriod : 100_000));
        }

        if (host.PidsLimit is > 0 and var pids)
        {
            builder = builder.WithPidsLimit(pids);
        }

        return string.IsNullOrEmpty(host.CpusetCpus) ? builder : builder.WithCpuset(host.CpusetCpus);
    }

    /// <summary>The named volumes a request mounts (<c>-v NAME:/path</c>, or a Mount of type volume).</summary>
    public static IEnumerable<string> VolumeNames(CreateContainerRequest request) =>
        (request.HostConfig?.Binds ?? []).Select(b => b.Split(':')[0]).Where(IsVolumeName)
            .Concat((request.HostConfig?.Mounts ?? []).Where(m => m.Type == "volume" && !string.IsNullOrEmpty(m.Source)).Select(m => m.Source!));

    private static bool IsVolumeName(string source) => source.Length > 0 && !source.Contains('/', StringComparison.Ordinal);

    private static ContainerBuilder Mounts(ContainerBuilder builder, HostConfigRequest host, Volumes.VolumeTable volumes)
    {
        foreach (var bind in host.Binds ?? [])
        {
            // SRC:DST[:OPTIONS]; a SRC without a slash is a named volume, made on first use as dockerd does.
            var parts = bind.Split(':');
            if (parts.Length is < 2 or > 3 || !(parts[0].StartsWith('/') || IsVolumeName(parts[0])))
            {
                throw DockerApiException.BadRequest($"invalid bind '{bind}': give HOST_PATH:CONTAINER_PATH[:ro] with an absolute host path, or VOLUME_NAME:CONTAINER_PATH[:ro]");
            }

            var options = parts.Length == 3 ? parts[2].Split(',') : [];
            var source = parts[0].StartsWith('/') ? parts[0] : volumes.Create(parts[0], null).Mountpoint;
            builder = builder.WithBindMount(source, parts[1], readOnly: options.Contains("ro"));
        }

        foreach (var mount in host.Mounts ?? [])
        {
            builder = mount.Type switch
            {
                "bind" => builder.WithBindMount(mount.Source ?? "", mount.Target ?? "", mount.ReadOnly),
                "volume" => builder.WithBindMount(volumes.Create(mount.Source, null).Mountpoint, mount.Target ?? "", mount.ReadOnly),
                "tmpfs" => builder.WithTmpfsMount(mount.Target ?? "", mount.TmpfsOptions is { SizeBytes: > 0 } t ? t.SizeBytes.ToString(CultureInfo.InvariantCulture) : null),
                var other => throw DockerApiException.BadRequest($"mount type '{other}' for {mount.Target} is not supported: use bind, volume or tmpfs"),
            };
        }

        foreach (var (target, options) in host.Tmpfs ?? [])
        {
            var size = options.Split(',').FirstOrDefault(o => o.StartsWith("size=", StringComparison.Ordinal))?[5..];
            builder = builder.WithTmpfsMount(target, size);
        }

        return builder;
    }

    /// <summary>
    /// The fixed host port of <c>-p 18080:80</c> (<c>PortBindings</c> with a <c>HostPort</c>); null for a random one (<c>-p 80</c>, or
    /// only exposed). The engine listens on 127.0.0.1: a host address of all interfaces or loopback is served there, any other refused.
    /// </summary>
    private static int? HostPort(HostConfigRequest host, int port)
    {
        var bindings = host.PortBindings?.GetValueOrDefault($"{port}/tcp") ?? host.PortBindings?.GetValueOrDefault(port.ToString(CultureInfo.InvariantCulture));
        int? chosen = null;
        foreach (var binding in bindings ?? [])
        {
            if (binding.HostIp is not (null or "" or "0.0.0.0" or "::" or "127.0.0.1" or "localhost"))
            {
                throw DockerApiException.BadRequest($"port {port}/tcp on host address {binding.HostIp}: IsoTest publishes ports on 127.0.0.1 only; use -p 127.0.0.1:HOSTPORT:{port} or -p HOSTPORT:{port}");
            }

            if (string.IsNullOrEmpty(binding.HostPort))
            {
                continue;
            }

            // Docker's host port ranges (8000-8010) pick one of them; IsoTest binds exactly one port.
            if (!int.TryParse(binding.HostPort, NumberStyles.None, CultureInfo.InvariantCulture, out var hostPort) || hostPort is < 1 or > 65535)
            {
                throw DockerApiException.BadRequest($"invalid host port '{binding.HostPort}' for {port}/tcp: give a number from 1 to 65535 (host port ranges are not supported), or leave it empty for a free one");
            }

            if (chosen is { } other && other != hostPort)
            {
                throw DockerApiException.BadRequest($"port {port}/tcp is bound to host ports {other} and {hostPort}: IsoTest publishes a container port on one host port; publish it once");
            }

            chosen = hostPort;
        }

        return chosen;
    }

    /// <summary>Every TCP port the request exposes or publishes; the engine publishes each on 127.0.0.1, at an ephemeral port unless <see cref="HostPort"/> fixes one.</summary>
    private static SortedSet<int> ContainerPorts(CreateContainerRequest request, HostConfigRequest host)
    {
        var ports = new SortedSet<int>();
        var keys = (host.PortBindings?.Keys ?? Enumerable.Empty<string>()).Concat(request.ExposedPorts?.Keys ?? Enumerable.Empty<string>());
        foreach (var key in keys)
        {
            var (number, protocol) = key.IndexOf('/', StringComparison.Ordinal) is var slash and >= 0 ? (key[..slash], key[(slash + 1)..]) : (key, "tcp");
            if (protocol != "tcp")
            {
                throw DockerApiException.BadRequest($"port {key}: only tcp ports can be published by IsoTest");
            }

            if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                throw DockerApiException.BadRequest($"invalid port '{key}': give a number from 1 to 65535, e.g. 8080/tcp");
            }

            ports.Add(port);
        }

        return ports;
    }
}
