using System.Globalization;
using System.Text;
using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Containers;
using IsoTest.Engine.Native;
using IsoTest.Engine.Networking;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Process;

/// <summary>A file to copy in before start: where the agent finds it on the host, and the spec's declaration.</summary>
internal sealed record StagedFile(string HostPath, FileCopySpec File);

/// <summary>Everything the `spec` message carries, resolved in managed code so the C side only executes.</summary>
internal sealed record AgentSetup(
    ContainerSpec Spec,
    ResolvedRoot Root,
    string Hostname,
    ResolvedUser User,
    IdMaps? IdMaps,
    CgroupJoin? Cgroup,
    IReadOnlyList<StagedFile> Files,
    NetnsMode Netns,
    bool CommandIsPid1 = false,
    bool JoinUserNamespace = false,
    string? HostMirrorStage = null);

/// <summary>
/// The agent's wire format (native/PROTOCOL.md), in one place: every message the engine sends is made
/// here, every message the agent sends is read here into an <see cref="AgentEvent"/>. A datagram is a
/// list of NUL-terminated UTF-8 fields, the verb first.
/// </summary>
internal static class AgentProtocol
{
    public static byte[] Encode(IEnumerable<string> fields)
    {
        var buffer = new List<byte>(256);
        foreach (var field in fields)
        {
            buffer.AddRange(Encoding.UTF8.GetBytes(field));
            buffer.Add(0);
        }

        return [.. buffer];
    }

    public static string[] Decode(ReadOnlySpan<byte> data)
    {
        var fields = new List<string>(8);
        while (!data.IsEmpty)
        {
            int nul = data.IndexOf((byte)0);
            if (nul < 0)
            {
                fields.Add(Encoding.UTF8.GetString(data));
                break;
            }

            fields.Add(Encoding.UTF8.GetString(data[..nul]));
            data = data[(nul + 1)..];
        }

        return [.. fields];
    }

    /// <summary>`spec`: records of a key and a fixed number of values. The command comes later, with `start`.</summary>
    public static byte[] Spec(AgentSetup setup)
    {
        var spec = setup.Spec;

        var s = new List<string> { "spec" };
        void Add(string key, params string[] values)
        {
            s.Add(key);
            s.AddRange(values);
        }

        Add("root", setup.Root.IsHost ? "host" : setup.Root.LowerDirectories[0]);
        foreach (var lower in setup.Root.LowerDirectories.Skip(1))
        {
            Add("lower", lower); // an image's further layers, topmost first
        }

        Add("readonly", spec.ReadOnlyRootFileSystem ? "1" : "0");
        if (setup.CommandIsPid1)
        {
            Add("pid1", "1");
        }
        if (setup.IdMaps is { } maps)
        {
            Add("userns", maps.UidMap, maps.GidMap);
            if (maps.Helpers is { } ranges)
            {
                Add("idmap", ranges.NewUidMap, ranges.NewGidMap);
            }
        }

        if (setup.JoinUserNamespace)
        {
            Add("joinuser", "1"); // the engine's user namespace for these maps, on the agent's fd 5
        }

        if (setup.HostMirrorStage is { } stage)
        {
            Add("mirror", stage); // a mount namespace with the host root's mirror at STAGE/r, made ahead (RootFs.HostMirrors), on the agent's fd 6
        }

        // Rootless, the host root is a mirror: the directories with mounts below them are not tried as overlays, and
        // their entries no id of the container may write in are bound read-only.
        bool rootless = setup.IdMaps is not null || setup.JoinUserNamespace || setup.Netns == NetnsMode.JoinWithUser;
        if (rootless && setup.Root.IsHost)
        {
            foreach (var dir in setup.Root.Submounts)
            {
                Add("submounts", dir);
            }

            foreach (var dir in setup.Root.ReadOnlyTrees)
            {
                Add("rotree", dir); // bound read-only, not an overlay: no id of the container may write in it
            }
        }

        Add("netns", Num((int)setup.Netns));
        Add("hostname", setup.Hostname);
        Add("uid", Num(setup.User.Uid));
        Add("gid", Num(setup.User.Gid));
        foreach (var mount in spec.Mounts)
        {
            switch (mount.Kind)
            {
                case MountKind.Bind:
                    Add("bind", Path.GetFullPath(mount.Source!), mount.Target, mount.ReadOnly ? "ro" : "rw");
                    break;
                case MountKind.Tmpfs:
                    Add("tmpfs", mount.Target, mount.SizeBytes is { } size ? $"size={Num(size)}" : "", mount.ReadOnly ? "ro" : "rw");
                    break;
                case MountKind.CopyOnWrite:
                    Add("cow", Path.GetFullPath(mount.Source!), mount.Target);
                    break;
            }
        }

        foreach (var (hostPath, file) in setup.Files)
        {
            Add("file", hostPath, file.Target, Convert.ToString(file.Mode, 8), Num(file.Uid), Num(file.Gid));
        }

        if (setup.Cgroup is { } cgroup)
        {
            // v1: init writes itself into each controller's tasks file; v2: it is cloned into the one directory.
            foreach (var target in cgroup.Targets)
            {
                Add(cgroup.Version == 1 ? "cg1" : "cg2", target);
            }

            if (cgroup.SelfMove)
            {
                Add("cg2join", "write");
            }
        }

        var (layer, tmp, run) = TmpfsSizes(spec.Limits.MemoryBytes);
        Add("sizes", Num(layer), Num(tmp), Num(run));
        if (Security.SeccompFilters.For(spec.Seccomp) is { } seccomp)
        {
            Add("seccomp", Num(seccomp.Flags), Convert.ToHexString(seccomp.Filter));
        }

        return Encode(s);
    }

    /// <summary>
    /// Caps of the tmpfs that hold the writable layer, /tmp and /run (issue 8): uncapped, each may take half
    /// the host's RAM. With a memory cap, half of it each: tmpfs pages count against the cap, and a full
    /// tmpfs is ENOSPC, which says more than the OOM killer does.
    /// </summary>
    internal static (long Layer, long Tmp, long Run) TmpfsSizes(long? memoryBytes) =>
        memoryBytes is { } m ? (m / 2, m / 2, Math.Min(m / 2, 64L << 20)) : (1L << 30, 1L << 30, 64L << 20);

    /// <summary>`start cwd nenv env... argv...`.</summary>
    public static byte[] Start(Payload payload) =>
        Encode(["start", payload.WorkingDirectory, Num(payload.Environment.Count), .. payload.Environment, .. payload.Argv]);

    /// <summary>`exec id uid gid cwd nenv env... argv...`, sent with stdin, stdout and stderr.</summary>
    public static byte[] Exec(long id, ResolvedUser user, Payload payload, IReadOnlyList<string> command) =>
        Encode(["exec", Num(id), Num(user.Uid), Num(user.Gid), payload.WorkingDirectory, Num(payload.Environment.Count), .. payload.Environment, .. command]);

    public static byte[] Connect(long id, int port) => Encode(["connect", Num(id), Num(port)]);

    public static byte[] Stat(long id, string path) => Encode(["stat", Num(id), path]);

    public static byte[] Signal(int signal) => Encode(["signal", Num(signal)]);

    public static byte[] Kill() => Encode(["kill"]);

    /// <summary>
    /// The host mirrors' maker's first datagram (native/PROTOCOL.md, "Host mirrors made ahead"): the layer size, the
    /// staging directory, then the submounts counted and the read-only trees after them, as the spec records of those names.
    /// </summary>
    public static byte[] Mirror(long layerSize, string stage, IReadOnlyList<string> submounts, IReadOnlyList<string> readOnlyTrees) =>
        Encode(["mirror", Num(layerSize), stage, Num(submounts.Count), .. submounts, .. readOnlyTrees]);

    /// <summary>Reads one message from the agent; unknown verbs (a newer agent) are <see cref="AgentEvent.Unknown"/>.</summary>
    public static AgentEvent Parse(string[] f, SafeFileHandle[] fds) => Field(f, 0) switch
    {
        "pid" => new AgentEvent.Pid(Int(f, 1)),
        "created" => new AgentEvent.Created(),
        "error" => new AgentEvent.SetupFailed(Error(f, 1)),
        "started" => new AgentEvent.Started(Int(f, 1)),
        "execfail" => new AgentEvent.StartFailed(Error(f, 1)),
        "exit" => new AgentEvent.Exited(Int(f, 1)),
        "reaped" => new AgentEvent.Reaped(Int(f, 1), TimeSpan.FromMicroseconds(Long(f, 2) + Long(f, 3))),
        "exec-started" => new AgentEvent.Reply(Long(f, 1), new AgentReply.ExecStarted()),
        "exec-failed" => new AgentEvent.Reply(Long(f, 1), new AgentReply.ExecFailed(Error(f, 2))),
        "exec-exit" => new AgentEvent.ExecExited(Long(f, 1), Int(f, 2)),
        "connected" when fds.Length == 1 => new AgentEvent.Reply(Long(f, 1), new AgentReply.Connected(fds[0])),
        "connected" or "connect-failed" => new AgentEvent.Reply(Long(f, 1), new AgentReply.ConnectFailed()),
        "stat" => new AgentEvent.Reply(Long(f, 1), new AgentReply.Stat(Field(f, 2) == "1")),
        _ => new AgentEvent.Unknown(Field(f, 0)),
    };

    private static AgentError Error(string[] f, int at) => new(Field(f, at), Int(f, at + 1), Field(f, at + 2));

    private static string Field(string[] fields, int i) => i < fields.Length ? fields[i] : "";

    private static int Int(string[] fields, int i) => (int)Long(fields, i);

    private static long Long(string[] fields, int i) =>
        i < fields.Length && long.TryParse(fields[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : 0;

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A message from the agent, read.</summary>
internal abstract record AgentEvent
{
    /// <summary>Init's pid in the host's PID namespace (shim, right after clone).</summary>
    public sealed record Pid(int HostPid) : AgentEvent;

    /// <summary>The container is set up; the payload has not started.</summary>
    public sealed record Created : AgentEvent;

    /// <summary>Setup failed; the agent exits.</summary>
    public sealed record SetupFailed(AgentError Error) : AgentEvent;

    /// <summary>The payload exec'd.</summary>
    public sealed record Started(int PayloadPid) : AgentEvent;

    /// <summary>The payload could not be exec'd.</summary>
    public sealed record StartFailed(AgentError Error) : AgentEvent;

    /// <summary>The payload exited (raw wait status).</summary>
    public sealed record Exited(int Status) : AgentEvent;

    /// <summary>The shim reaped init: its status and the CPU time of everything init reaped.</summary>
    public sealed record Reaped(int Status, TimeSpan CpuTime) : AgentEvent;

    /// <summary>An exec'd command exited (raw wait status).</summary>
    public sealed record ExecExited(long Id, int Status) : AgentEvent;

    /// <summary>The answer to the request with <paramref name="Id"/>.</summary>
    public sealed record Reply(long Id, AgentReply Answer) : AgentEvent;

    /// <summary>A verb this engine does not know.</summary>
    public sealed record Unknown(string Verb) : AgentEvent;
}

/// <summary>The typed answer to a request (exec, connect, stat).</summary>
internal abstract record AgentReply
{
    public sealed record ExecStarted : AgentReply;

    public sealed record ExecFailed(AgentError Error) : AgentReply;

    /// <summary>The caller owns <paramref name="Socket"/>.</summary>
    public sealed record Connected(SafeFileHandle Socket) : AgentReply;

    /// <summary>Nothing listens there (or the socket could not be made); the errno is the agent's business.</summary>
    public sealed record ConnectFailed : AgentReply;

    public sealed record Stat(bool Exists) : AgentReply;
}
