// Git, through simple-git. Adapters translate; they never decide.
import { simpleGit } from 'simple-git';

/** The commit checked out in the repository that holds `dir`, or null outside a repository. */
export async function headCommit(dir: string): Promise<string | null> {
  try {
    const git = simpleGit({ baseDir: dir });
    if (!(await git.checkIsRepo())) return null;
    return (await git.revparse(['HEAD'])).trim();
  } catch {
    return null;
  }
}
