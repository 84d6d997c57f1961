using System.Globalization;
using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Process;

/// <summary>
/// Rootless, a running container's files as its root may touch them: the agent in <c>filer</c> mode (native/filer.c)
/// joins the container's user namespace, where it holds every capability over the ids the namespace maps (a server's
/// data directory owned by uid 999 inside, say) and none over the host's, and makes each call of
/// <see cref="ITreeCalls"/> for the engine on the descriptors it is sent. This is how rootless Docker's daemon, root in
/// its user namespace, does <c>docker cp</c>; the engine alone, as the caller, could write only what the caller owns.
/// One request at a time; the tree that uses it (<see cref="LayerTree.OpenRootOf"/>) owns it and ends it at dispose.
/// </summary>
internal sealed class ContainerFiler : ITreeCalls, IAgentListener
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);
    private readonly Lock _requestLock = new();
    private readonly HelperAgent _process;
    private TaskCompletionSource<(string[] Fields, SafeFileHandle[] Fds)>? _pending;
    private volatile string? _gone;

    private ContainerFiler() => _process = new HelperAgent(this);

    /// <summary>Starts a filer in <paramref name="userNamespace"/> (a running container's, from /proc/PID/ns/user).</summary>
    public static ContainerFiler Start(EngineLoop loop, string agentPath, SafeFileHandle userNamespace)
    {
        var filer = new ContainerFiler();
        filer._process.Spawn(loop, agentPath, userNamespace, [AgentProtocol.Encode(["filer"])]);
        return filer;
    }

    public int OpenInRoot(SafeFileHandle root, string path, int flags, out SafeFileHandle? handle) =>
        Call(["open", path, Num(flags)], [root], out handle);

    public int OpenAt(SafeFileHandle dir, string name, int flags, int mode, out SafeFileHandle? handle) =>
        Call(["openat", name, Num(flags), Octal(mode)], [dir], out handle);

    public int MakeDirectory(SafeFileHandle dir, string name, int mode) => Call(["mkdir", name, Octal(mode)], [dir]);

    public int Symlink(SafeFileHandle dir, string name, string target) => Call(["symlink", name, target], [dir]);

    public int Link(SafeFileHandle targetDir, string targetName, SafeFileHandle dir, string name) =>
        Call(["link", name, targetName], [targetDir, dir]);

    public int MakeNode(SafeFileHandle dir, string name, int typeAndMode, ulong device) =>
        Call(["mknod", name, Octal(typeAndMode), device.ToString(CultureInfo.InvariantCulture)], [dir]);

    public int Chown(SafeFileHandle dir, string name, int uid, int gid) => Call(["chown", name, Num(uid), Num(gid)], [dir]);

    public int Chmod(SafeFileHandle node, int mode) => Call(["chmod", Octal(mode)], [node]);

    public int SetXattr(SafeFileHandle dir, string name, string attribute, ReadOnlySpan<byte> value) =>
        Call(["setxattr", name, attribute, Convert.ToHexString(value)], [dir]);

    public int SetTimes(SafeFileHandle dir, string name, long seconds, long nanoseconds) =>
        Call(["utimes", name, Num(seconds), Num(nanoseconds)], [dir]);

    public int Unlink(SafeFileHandle dir, string name, int flags) => Call(["unlink", name, Num(flags)], [dir]);

    public int Stat(SafeFileHandle dir, string name, out TreeStat stat)
    {
        var (errno, fields) = Request(["stat", name], [dir], out _);
        // ok MODE SIZE UID GID MTIME_S MTIME_NS MAJOR MINOR LINK
        stat = errno != 0 ? default : new TreeStat(
            (int)Parse(fields[1]), Parse(fields[2]), (int)Parse(fields[3]), (int)Parse(fields[4]), Parse(fields[5]), Parse(fields[6]),
            (int)Parse(fields[7]), (int)Parse(fields[8]), fields.Length > 9 && fields[9].Length > 0 ? fields[9] : null);
        return errno;
    }

    public void OnMessage(string[] fields, SafeFileHandle[] fds)
    {
        if (fields is ["error", ..])
        {
            // The agent could not join the container's user namespace (or another setup step): it exits next.
            _gone = $"the agent that writes the container's files from its user namespace failed: {string.Join(' ', fields.Skip(1))}";
            foreach (var fd in fds)
            {
                fd.Dispose();
            }

            return;
        }

        var pending = Interlocked.Exchange(ref _pending, null);
        if (pending is null)
        {
            foreach (var fd in fds)
            {
                fd.Dispose();
            }

            return;
        }

        pending.TrySetResult((fields, fds));
    }

    public void OnClosed()
    {
        _gone ??= "the agent that writes the container's files from its user namespace exited (or could not start)";
        Interlocked.Exchange(ref _pending, null)?.TrySetException(new LayerTreeException(_gone));
    }

    /// <summary>Tells the filer to exit and waits until the loop reaped it (PDEATHSIG ends it should the engine die first).</summary>
    public void Dispose() => _process.Dispose();

    private int Call(string[] fields, SafeFileHandle[] fds) => Request(fields, fds, out _).Errno;

    private int Call(string[] fields, SafeFileHandle[] fds, out SafeFileHandle? handle) => Request(fields, fds, out handle).Errno;

    /// <summary>One request and its reply: errno 0 with the reply's fields (and descriptor, if it sent one), or the errno.</summary>
    private (int Errno, string[] Fields) Request(string[] fields, SafeFileHandle[] fds, out SafeFileHandle? handle)
    {
        lock (_requestLock)
        {
            var reply = new TaskCompletionSource<(string[] Fields, SafeFileHandle[] Fds)>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pending = reply;
            if (_gone is { } gone || !_process.TrySend(AgentProtocol.Encode(fields), fds))
            {
                _pending = null;
                throw new LayerTreeException(_gone ?? "the agent that writes the container's files from its user namespace is gone");
            }

            string[] said;
            SafeFileHandle[] received;
            try
            {
                (said, received) = reply.Task.WaitAsync(ReplyTimeout).GetAwaiter().GetResult();
            }
            catch (TimeoutException)
            {
                _pending = null;
                throw new LayerTreeException($"the agent that writes the container's files did not answer '{fields[0]}' within {ReplyTimeout.TotalSeconds:0} s");
            }

            handle = received.Length > 0 ? received[0] : null;
            foreach (var extra in received.Skip(1))
            {
                extra.Dispose();
            }

            return said switch
            {
                ["ok", ..] => (0, said),
                ["err", var errno] => (int.Parse(errno, CultureInfo.InvariantCulture), said),
                _ => throw new LayerTreeException($"the agent that writes the container's files answered '{fields[0]}' with '{string.Join(' ', said)}'"),
            };
        }
    }

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Octal(int value) => Convert.ToString(value, 8);

    private static long Parse(string value) => long.Parse(value, CultureInfo.InvariantCulture);
}
