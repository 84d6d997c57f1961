using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Process;

/// <summary>Receives what an init agent says. Called on the engine loop's thread: return quickly.</summary>
internal interface IAgentListener
{
    /// <summary>One message, its fields decoded; the listener owns <paramref name="fds"/>.</summary>
    void OnMessage(string[] fields, SafeFileHandle[] fds);

    /// <summary>The control socket reached EOF and the shim was reaped: every agent process is gone.</summary>
    void OnClosed();
}
