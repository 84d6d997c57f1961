using System.Globalization;
using Docker.DotNet.Models;

namespace IsoTest.Docker;

/// <summary>Maps an IsoTest <see cref="ContainerSpec"/> onto Docker's create-container request.</summary>
internal static class DockerSpecMapper
{
    internal static string NewName() => "isotest-" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..12];

    internal static string PortKey(int port) => port.ToString(CultureInfo.InvariantCulture) + "/tcp";

    /// <param name="spec">The validated spec.</param>
    /// <param name="image">The image the daemon has (pulled or imported).</param>
    /// <param name="name">The container's unique name.</param>
    /// <param name="publishHostIp">Host address ports are published on: 127.0.0.1 for a local daemon, "" (all) for a remote one.</param>
    /// <param name="owner">Owner labels for the sweep.</param>
    /// <param name="hostGateway">The first network's gateway, where exposed host ports are relayed (null without networks).</param>
    internal static CreateContainerParameters Map(ContainerSpec spec, string image, string name, string publishHostIp, DockerOwner owner, string? hostGateway = null)
    {
        var labels = new Dictionary<string, string>(spec.Labels);
        owner.AddLabels(labels);

        var hostNetwork = spec.Network.Kind == NetworkKind.Host;
        var parameters = new CreateContainerParameters
        {
            Name = name,
            Image = image,
            // Docker semantics: without an entrypoint the image's ENTRYPOINT stays and Command is its arguments
            // (as `docker run image args`); an explicit entrypoint also drops the image's CMD.
            Entrypoint = spec.Entrypoint.Count > 0 ? [.. spec.Entrypoint] : null!,
            Cmd = spec.Command.Count > 0 ? [.. spec.Command] : null!,
            Env = [.. spec.Environment.Select(kv => kv.Key + "=" + kv.Value)],
            WorkingDir = spec.WorkingDirectory!,
            User = spec.User!,
            // Docker refuses a hostname together with the host's network namespace (it is the host's UTS then too).
            Hostname = hostNetwork ? null! : spec.Hostname!,
            Labels = labels,
            AttachStdout = false,
            AttachStderr = false,
            Tty = false, // keeps stdout and stderr apart (multiplexed frames)
            StopTimeout = spec.StopTimeout,
            HostConfig = new HostConfig
            {
                ReadonlyRootfs = spec.ReadOnlyRootFileSystem,
                // Published ports need the default bridge (an internal network publishes nothing): the user-defined
                // networks are then connected before start (DockerBackend). Else the first one is joined by name
                // (it must exist); without any, no ports means loopback only, like the engine.
                NetworkMode = spec.Network switch
                {
                    { Kind: NetworkKind.Host } => "host",
                    _ when spec.Ports.Count > 0 => "bridge",
                    { Kind: NetworkKind.Named, Name: { } network } => network,
                    _ => "none",
                },
                // The host as the engine names it, on the first network's gateway.
                ExtraHosts = hostGateway is null ? null! : [$"{HostNames.IsoTest}:{hostGateway}", $"{HostNames.Docker}:{hostGateway}"],
                Mounts = [],
                // Files and copy-on-write trees are uploaded before start; keeping the container after exit keeps logs and the exit code.
                AutoRemove = false,
                // The daemon applies its default profile when told nothing; a profile travels as JSON text, as the docker CLI sends it.
                SecurityOpt = spec.Seccomp.IsDefault ? null! : [spec.Seccomp.IsUnconfined ? "seccomp=unconfined" : "seccomp=" + spec.Seccomp.Json],
            },
        };

        if (spec.Network is { Kind: NetworkKind.Named, Name: { } first } && parameters.HostConfig.NetworkMode == first)
        {
            parameters.NetworkingConfig = new NetworkingConfig
            {
                EndpointsConfig = new Dictionary<string, EndpointSettings> { [first] = new() { Aliases = [.. spec.NetworkAliases] } },
            };
        }

        MapLimits(spec.Limits, parameters.HostConfig);
        MapPorts(spec, parameters, publishHostIp);
        foreach (var mount in spec.Mounts)
        {
            switch (mount.Kind)
            {
                case MountKind.Bind:
                    parameters.HostConfig.Mounts.Add(new Mount
                    {
                        Type = "bind",
                        Source = Path.GetFullPath(mount.Source!),
                        Target = mount.Target,
                        ReadOnly = mount.ReadOnly,
                    });
                    break;
                case MountKind.Tmpfs:
                    parameters.HostConfig.Mounts.Add(new Mount
                    {
                        Type = "tmpfs",
                        Target = mount.Target,
                        ReadOnly = mount.ReadOnly,
                        TmpfsOptions = new TmpfsOptions { SizeBytes = mount.SizeBytes },
                    });
                    break;
                case MountKind.CopyOnWrite:
                    // Docker has no overlay mount of a host directory: the tree is copied into the container's
                    // own writable layer before start (DockerContainer), so writes never reach the host.
                    break;
            }
        }

        return parameters;
    }

    private static void MapLimits(ResourceLimits limits, HostConfig host)
    {
        if (limits.MemoryBytes is { } memory)
        {
            host.Memory = memory;
            host.MemorySwap = memory; // memory+swap = memory: swap off, so going over the cap OOM-kills
        }

        if (limits.Cpus is { } cpus)
        {
            host.NanoCPUs = (long)Math.Round(cpus * 1e9);
        }

        if (limits.Pids is { } pids)
        {
            host.PidsLimit = pids;
        }

        if (limits.CpusetCpus is { } cpuset)
        {
            host.CpusetCpus = cpuset;
        }
    }

    private static void MapPorts(ContainerSpec spec, CreateContainerParameters parameters, string publishHostIp)
    {
        if (spec.Network.Kind == NetworkKind.Host || spec.Ports.Count == 0)
        {
            return; // host network: the port is the host's own; nothing to publish
        }

        var bindings = new Dictionary<string, IList<PortBinding>>();
        parameters.ExposedPorts = new Dictionary<string, EmptyStruct>();
        parameters.HostConfig!.PortBindings = bindings;
        foreach (var port in spec.Ports.Distinct())
        {
            var key = PortKey(port);
            parameters.ExposedPorts[key] = default;
            // HostPort "" asks the daemon for a free ephemeral port; read back from inspect after start.
            var hostPort = spec.HostPorts.TryGetValue(port, out var fixedPort) ? fixedPort.ToString(CultureInfo.InvariantCulture) : "";
            bindings[key] = [new PortBinding { HostIP = publishHostIp, HostPort = hostPort }];
        }
    }
}
