//! [`ImageService`] over gRPC. `PullImage` has no deadline (a large image may take long, as
//! upstream); the image-pull manager above bounds it if it wants to.

use async_trait::async_trait;

use super::{RemoteRuntime, missing, request, unary};
use crate::{ImageService, Result, api};

#[async_trait]
impl ImageService for RemoteRuntime {
    async fn list_images(&self, filter: Option<api::ImageFilter>) -> Result<Vec<api::Image>> {
        let deadline = Some(self.request_timeout);
        let mut client = self.images.clone();
        let call = client.list_images(request(api::ListImagesRequest { filter }, deadline));
        Ok(unary("ListImages", "", deadline, call).await?.images)
    }

    async fn image_fs_info(&self) -> Result<api::ImageFsInfoResponse> {
        let deadline = Some(self.request_timeout);
        let mut client = self.images.clone();
        let call = client.image_fs_info(request(api::ImageFsInfoRequest {}, deadline));
        unary("ImageFsInfo", "", deadline, call).await
    }

    async fn image_status(&self, image: &api::ImageSpec) -> Result<Option<api::Image>> {
        const OP: &str = "ImageStatus";
        let deadline = Some(self.request_timeout);
        let message = api::ImageStatusRequest { image: Some(image.clone()), verbose: false };
        let mut client = self.images.clone();
        let call = client.image_status(request(message, deadline));
        let found = unary(OP, &image.image, deadline, call).await?.image;
        // Upstream treats an image without ID or tags as malformed rather than absent.
        let malformed =
            found.as_ref().is_some_and(|found| found.id.is_empty() || (found.repo_tags.is_empty() && found.repo_digests.is_empty()));
        if malformed {
            return Err(missing(OP, &image.image, "image.id or image.repo_tags"));
        }
        Ok(found)
    }

    async fn pull_image(
        &self,
        image: api::ImageSpec,
        auth: Option<api::AuthConfig>,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String> {
        const OP: &str = "PullImage";
        let object = image.image.clone();
        let message = api::PullImageRequest { image: Some(image), auth, sandbox_config };
        let mut client = self.images.clone();
        let call = client.pull_image(request(message, None));
        let image_ref = unary(OP, &object, None, call).await?.image_ref;
        if image_ref.is_empty() {
            return Err(missing(OP, &object, "image_ref"));
        }
        Ok(image_ref)
    }

    async fn remove_image(&self, image: &api::ImageSpec) -> Result<()> {
        let deadline = Some(self.request_timeout);
        let message = api::RemoveImageRequest { image: Some(image.clone()) };
        let mut client = self.images.clone();
        let call = client.remove_image(request(message, deadline));
        unary("RemoveImage", &image.image, deadline, call).await.map(drop)
    }
}
