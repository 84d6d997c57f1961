using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>The init agent's shim process as the host sees it: spawned, reaped, and (only when it no longer answers) killed by pid.</summary>
internal static unsafe class AgentProcess
{
    /// <summary>
    /// posix_spawns <paramref name="path"/> with <paramref name="fds"/> as its descriptors 0, 1, 2, ... and no
    /// arguments or environment (the agent gets everything over its control socket). Returns its pid.
    /// </summary>
    public static int Spawn(string path, SafeFileHandle[] fds)
    {
        // Large enough for glibc's posix_spawn_file_actions_t (80 bytes on x86_64).
        byte* actions = stackalloc byte[256];
        Libc.posix_spawn_file_actions_init(actions);
        var refs = new bool[fds.Length];
        var pathBytes = Marshal.StringToCoTaskMemUTF8(path);
        var argv = stackalloc byte*[2] { (byte*)pathBytes, null };
        var envp = stackalloc byte*[1] { null };
        try
        {
            for (int i = 0; i < fds.Length; i++)
            {
                fds[i].DangerousAddRef(ref refs[i]);
                int rc = Libc.posix_spawn_file_actions_adddup2(actions, (int)fds[i].DangerousGetHandle(), i);
                if (rc != 0)
                {
                    throw Errors.Native("posix_spawn_file_actions_adddup2", rc);
                }
            }

            int pid;
            int err = Libc.posix_spawn(&pid, (byte*)pathBytes, actions, null, argv, envp);
            if (err != 0)
            {
                throw Errors.Native($"spawning the init agent {path}", err);
            }

            return pid;
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(actions);
            Marshal.FreeCoTaskMem(pathBytes);
            for (int i = 0; i < refs.Length; i++)
            {
                if (refs[i])
                {
                    fds[i].DangerousRelease();
                }
            }
        }
    }

    /// <summary>Reaps the shim. Called after its control socket reached EOF: it is exiting, so this cannot block for long.</summary>
    public static void Reap(int pid)
    {
        int status;
        while (Libc.waitpid(pid, &status, 0) < 0 && Libc.Errno == Libc.EINTR)
        {
        }
    }
}
