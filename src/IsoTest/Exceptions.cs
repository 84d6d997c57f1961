namespace IsoTest;

/// <summary>Base of every error IsoTest reports. Users catch these; IsoTest and its backends create them.</summary>
public abstract class IsoTestException : Exception
{
    private readonly List<string> _notes = [];

    private protected IsoTestException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }

    /// <inheritdoc/>
    public override string Message
    {
        get
        {
            lock (_notes)
            {
                return _notes.Count == 0 ? base.Message : base.Message + "\n" + string.Join('\n', _notes);
            }
        }
    }

    /// <summary>
    /// Adds a line the reader needs to the message, once per text: how the backend was chosen (the <c>auto</c>
    /// fallback's reason), what to use when an image cannot be had.
    /// </summary>
    internal void AddNote(string note)
    {
        lock (_notes)
        {
            if (!_notes.Contains(note))
            {
                _notes.Add(note);
            }
        }
    }

    /// <summary>The container concerned, if any.</summary>
    public string? ContainerId { get; private protected init; }
}

/// <summary>The spec given to a builder is invalid. <see cref="Errors"/> lists every problem, not just the first.</summary>
public sealed class InvalidContainerSpecException : IsoTestException
{
    /// <summary>Reports every problem of a spec; backends add their own checks to the same list.</summary>
    public InvalidContainerSpecException(IReadOnlyList<string> errors)
        : base("Invalid container spec:" + string.Concat(errors.Select(e => "\n  - " + e)))
    {
        Errors = errors;
    }

    /// <summary>One message per problem; each names the setting and how to fix it.</summary>
    public IReadOnlyList<string> Errors { get; }
}

/// <summary>A container could not be created or started.</summary>
public class ContainerStartException : IsoTestException
{
    /// <summary>A container could not be created or started; <paramref name="outputTail"/> is what it wrote last.</summary>
    public ContainerStartException(string? containerId, string message, string? outputTail = null, Exception? inner = null)
        : base(WithTail(message, outputTail), inner)
    {
        ContainerId = containerId;
        OutputTail = outputTail;
    }

    /// <summary>The last lines the container wrote, if any.</summary>
    public string? OutputTail { get; }

    internal static string WithTail(string message, string? tail) =>
        string.IsNullOrEmpty(tail) ? message : message + "\n--- last output ---\n" + tail;
}

/// <summary>Why a command could not be executed.</summary>
public enum ExecFailure
{
    /// <summary>The program does not exist (ENOENT), in the container's PATH or at the given path.</summary>
    NotFound,

    /// <summary>The program exists but cannot be executed (EACCES, ENOEXEC).</summary>
    NotExecutable,

    /// <summary>The working directory does not exist or cannot be entered.</summary>
    BadWorkingDirectory,

    /// <summary>Switching to the requested user or dropping privileges failed.</summary>
    BadUser,

    /// <summary>Any other reason; see <see cref="ExecFailedException.Errno"/>.</summary>
    Other,
}

/// <summary>The container's command (or an exec'd one) could not be executed. Names the path and errno.</summary>
public sealed class ExecFailedException : ContainerStartException
{
    /// <summary>A command could not be executed (the kernel's errno and its text explain why).</summary>
    public ExecFailedException(string? containerId, ExecFailure reason, string path, int errno, string errnoText)
        : base(containerId, Describe(containerId, reason, path, errno, errnoText))
    {
        Reason = reason;
        Path = path;
        Errno = errno;
    }

    /// <summary>What went wrong.</summary>
    public ExecFailure Reason { get; }

    /// <summary>The program or directory concerned.</summary>
    public string Path { get; }

    /// <summary>The errno the kernel returned.</summary>
    public int Errno { get; }

    private static string Describe(string? id, ExecFailure reason, string path, int errno, string text)
    {
        var what = reason switch
        {
            ExecFailure.NotFound => $"executable '{path}' was not found in the container: check the command and the container's PATH and root filesystem",
            ExecFailure.NotExecutable => $"'{path}' is not executable: check its mode (chmod +x) and that it is a program for this machine",
            ExecFailure.BadWorkingDirectory => $"working directory '{path}' does not exist in the container: create it or change WithWorkingDirectory",
            ExecFailure.BadUser => $"could not switch to user '{path}': check WithUser",
            _ => $"could not execute '{path}'",
        };
        return $"Container {id}: {what} ({text}, errno {errno}).";
    }
}

/// <summary>A requested cap cannot be enforced on this machine (no cgroup controller, no delegation, below the kernel minimum).</summary>
public sealed class ResourceLimitException : IsoTestException
{
    /// <summary>A cap cannot be enforced here; the message says how to make it possible.</summary>
    public ResourceLimitException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>A container did not become ready in time.</summary>
public sealed class WaitTimeoutException : IsoTestException
{
    /// <summary>A readiness wait ran out of time.</summary>
    public WaitTimeoutException(string? containerId, string condition, TimeSpan timeout, string? outputTail)
        : base(ContainerStartException.WithTail($"Container {containerId} was not ready after {timeout.TotalSeconds:0.###} s: {condition} was not met.", outputTail))
    {
        ContainerId = containerId;
        Condition = condition;
        OutputTail = outputTail;
    }

    /// <summary>Also says what the last failed attempt saw (e.g. "connection refused", "exit code 2").</summary>
    /// <summary>A readiness wait ran out of time; <paramref name="lastAttempt"/> says what the last probe saw.</summary>
    public WaitTimeoutException(string? containerId, string condition, TimeSpan timeout, string? outputTail, string? lastAttempt, Exception? inner)
        : base(
            ContainerStartException.WithTail(
                $"Container {containerId} was not ready after {timeout.TotalSeconds:0.###} s: {condition} was not met"
                + (string.IsNullOrEmpty(lastAttempt) ? "." : $" (last attempt: {lastAttempt})."),
                outputTail),
            inner)
    {
        ContainerId = containerId;
        Condition = condition;
        OutputTail = outputTail;
    }

    /// <summary>The condition that was not met.</summary>
    public string Condition { get; }

    /// <summary>The last lines the container wrote.</summary>
    public string? OutputTail { get; }
}

/// <summary>The container's command exited while IsoTest waited for it to become ready.</summary>
public sealed class ContainerExitedException : IsoTestException
{
    /// <summary>The container's command exited while a wait was still waiting for it.</summary>
    public ContainerExitedException(string? containerId, int exitCode, bool oomKilled, string condition, string? outputTail)
        : base(ContainerStartException.WithTail(
            $"Container {containerId} exited with code {exitCode}{(oomKilled ? " (killed by the OOM killer: raise WithMemoryLimit)" : "")} while waiting for {condition}.", outputTail))
    {
        ContainerId = containerId;
        ExitCode = exitCode;
        OomKilled = oomKilled;
    }

    /// <summary>The exit code.</summary>
    public int ExitCode { get; }

    /// <summary>True when it was OOM-killed.</summary>
    public bool OomKilled { get; }
}

/// <summary>An image could not be pulled or imported: names the reference, the registry (if any) and what went wrong.</summary>
public class ImagePullException : IsoTestException
{
    /// <summary>An image could not be pulled or imported.</summary>
    public ImagePullException(string image, string message, Exception? inner = null)
        : base($"Image '{image}': {message}", inner)
    {
        Image = image;
    }

    internal ImagePullException(string image, string? registry, string message, Exception? inner = null)
        : base($"Image '{image}'{(registry is null ? "" : $" (registry {registry})")}: {message}", inner)
    {
        Image = image;
        Registry = registry;
    }

    /// <summary>The image reference.</summary>
    public string Image { get; }

    /// <summary>The registry asked, or null for an import or a local store lookup.</summary>
    public string? Registry { get; }
}

/// <summary>A layer of an image could not be unpacked (a corrupt or malicious archive); nothing of it is left in the store.</summary>
public sealed class ImageUnpackException : ImagePullException
{
    internal ImageUnpackException(string image, string layer, string message, Exception? inner = null)
        : base(image, $"layer {layer}: {message}", inner)
    {
        Layer = layer;
    }

    /// <summary>The layer's digest.</summary>
    public string Layer { get; }
}

/// <summary>The chosen backend cannot run here (no Docker daemon, no kernel support, an unsupported feature).</summary>
public sealed class BackendUnavailableException : IsoTestException
{
    /// <summary>A backend cannot run here; the message says why and what to do.</summary>
    public BackendUnavailableException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
